"""A tiny random masked-LM with the real 30,522-piece uncased vocabulary.

Overrides the session fixture of the same name: under transformers 5 `BertTokenizerFast(vocab_file=...)`
silently builds a 5-token vocabulary, so the tokenizer is built from the vocabulary file with `vocab=`.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from augment.resolve import packaged_minilm_path

    out = tmp_path_factory.mktemp("tiny-mlm-adapt")
    tok = BertTokenizerFast(vocab=str(packaged_minilm_path() / "vocab.txt"), do_lower_case=True)
    assert tok.vocab_size == 30522
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertForMaskedLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train fastest on one thread, and shared CI cores are not oversubscribed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
