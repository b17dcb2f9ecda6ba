"""One Augmenter loaded once (no MLM: packaged word vectors), and a reference build that every
parallel, resumed or re-batched build must match byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.config import AugmentConfig
from tests.augment.build.support import SETTINGS, build_with, make_spec, write_sst2


@pytest.fixture(scope="session")
def augmenter():
    from augment.augmenter import Augmenter

    return Augmenter(AugmentConfig.build(**SETTINGS))


@pytest.fixture(scope="session")
def sst2_input(tmp_path_factory) -> Path:
    return write_sst2(tmp_path_factory.mktemp("input") / "train.tsv", 200)


@pytest.fixture(scope="session")
def reference(tmp_path_factory, sst2_input: Path, augmenter) -> Path:
    """An uninterrupted single-process build of `sst2_input`."""
    out = tmp_path_factory.mktemp("reference") / "out"
    build_with(make_spec(sst2_input, out), augmenter)
    return out
