"""Adaptation tests train tiny models: one torch thread is fastest for them, and it keeps shared
CI cores from being oversubscribed."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
