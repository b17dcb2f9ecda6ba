"""The masked-LMs measured: `small` (the shared MLM), `base` (bert-base-uncased's shape with
seeded random weights) or MLM folders."""

from __future__ import annotations

import shutil
from pathlib import Path


def resolve_models(spec: str, small: Path, tmp: Path) -> list[tuple[str, Path, bool]]:
    """(name, folder, random weights?) per entry of --models."""
    out = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name == "small":
            out.append(("small", small, False))
        elif name == "base":
            out.append(("base", make_base(small, tmp / "bert-base-random"), True))
        else:
            out.append((Path(name).name or name, Path(name), False))
    return out


def make_base(tokenizer_from: Path, out: Path) -> Path:
    """BertForMaskedLM with bert-base-uncased's config and seeded random weights, saved with the
    uncased tokenizer of `tokenizer_from` (the packaged MiniLM's when that folder is missing)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    if not (tokenizer_from / "config.json").is_file():
        from kdaug.resolve import packaged_minilm_path

        tokenizer_from = packaged_minilm_path()
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig()).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(out)
    if (tokenizer_from / "vocab.txt").is_file():
        shutil.copy(tokenizer_from / "vocab.txt", out / "vocab.txt")
    return out
