"""adapt-mlm on CUDA (`pytest -m gpu` on a GPU machine; skipped without CUDA)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import BertForMaskedLM

from augment.adapt.train import CHECKPOINT, MLMAdapter
from tests.augment.adapt.test_train import settings, text_corpus

__all__ = ["text_corpus"]  # the corpus fixture of the CPU tests, used here too

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_trains_on_cuda_and_saves_a_model_that_loads_on_cpu(tiny_mlm_dir, text_corpus, tmp_path):
    out = tmp_path / "m"
    adapter = MLMAdapter(settings(tiny_mlm_dir, text_corpus, out, device="cuda"))
    record = adapter.run()
    assert str(adapter.device).startswith("cuda")
    assert next(adapter.model.parameters()).is_cuda
    assert record["steps"] == 4 and math.isfinite(record["final_loss"])
    saved = json.loads((out / "kdaug_mlm.json").read_text())
    assert saved["eval"]["after"]["masked_tokens"] > 0
    model = BertForMaskedLM.from_pretrained(out)
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in model.parameters())


def test_resume_on_cuda_continues_exactly(tiny_mlm_dir, text_corpus, tmp_path):
    """As on the CPU: a run cut at step 3 and resumed ends with the weights of a straight run
    (the tiny model has dropout, which draws from the CUDA generator here)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    MLMAdapter(settings(tiny_mlm_dir, text_corpus, straight, steps=6, device="cuda")).run()
    MLMAdapter(settings(tiny_mlm_dir, text_corpus, split, steps=3, device="cuda")).run()
    assert torch.load(split / CHECKPOINT, weights_only=False)["progress"]["step"] == 3
    MLMAdapter(settings(tiny_mlm_dir, text_corpus, split, steps=6, device="cuda")).run()
    a = BertForMaskedLM.from_pretrained(straight).state_dict()
    b = BertForMaskedLM.from_pretrained(split).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
