from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def augmenter(tiny_mlm_dir):
    from augment import AugmentConfig, Augmenter

    return Augmenter(AugmentConfig.build(mlm=str(tiny_mlm_dir), n=6, device="cpu"))


@pytest.fixture(scope="session")
def tagger(augmenter):
    return augmenter.tagger
