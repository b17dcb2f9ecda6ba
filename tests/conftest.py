"""Session-wide fixtures: tiny real models made here, and the shared offline assets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_assets_dir() -> Path | None:
    env = os.environ.get("KDAUG_SHARED_ASSETS")
    path = Path(env) if env else REPO.parent / "shared" / "assets"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_assets() -> Path:
    path = shared_assets_dir()
    if path is None:
        pytest.skip("shared assets not found (set KDAUG_SHARED_ASSETS)")
    return path


def _save_tiny_bert(
    out: Path, architecture: str = "BertForSequenceClassification", seed: int = 0, **config: Any
) -> Path:
    import torch
    import transformers

    from kdaug.resolve import packaged_minilm_path

    tok = transformers.AutoTokenizer.from_pretrained(packaged_minilm_path())
    settings = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        **config,
    }
    torch.manual_seed(seed)
    getattr(transformers, architecture)(transformers.BertConfig(**settings)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def save_tiny_bert() -> Callable[..., Path]:
    """save_tiny_bert(out, architecture="BertForSequenceClassification", seed=0, **config) ->
    `out`: a tiny random BERT (2 layers of width 32; BertConfig settings in `config`) with the
    real uncased 30,522-piece WordPiece vocabulary, saved with save_pretrained so that tests load
    it through the same code path as real models."""
    return _save_tiny_bert


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BertForMaskedLM (see save_tiny_bert)."""
    out = tmp_path_factory.mktemp("tiny-mlm")
    return _save_tiny_bert(out, "BertForMaskedLM", max_position_embeddings=512)


@pytest.fixture(scope="session")
def shared_mlm_dir(shared_assets: Path) -> Path:
    path = shared_assets / "mlm-minilm-adapted"
    if not (path / "config.json").is_file():
        pytest.skip("shared MLM not found")
    return path
