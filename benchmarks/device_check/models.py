"""Random-weight BERT models of a given shape with the real uncased vocabulary, saved with
save_pretrained so that kdaug loads them the way it loads real ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdaug.files import atomic_dir


def save_bert(
    out: Path, tokenizer_dir: Path, shape: dict[str, Any], architecture: str, **config: Any
) -> Path:
    """`architecture` (BertForMaskedLM, BertForSequenceClassification) with BertConfig `shape`
    and the vocabulary of `tokenizer_dir`, seeded random weights; kept when already saved."""
    if (out / "config.json").is_file():
        return out
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    settings = {"vocab_size": len(tokenizer), **shape, **config}
    torch.manual_seed(0)
    model = getattr(transformers, architecture)(transformers.BertConfig(**settings))
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if (tokenizer_dir / "vocab.txt").is_file():  # the official algorithm's legacy tokenizer
            (tmp / "vocab.txt").write_bytes((tokenizer_dir / "vocab.txt").read_bytes())
    return out
