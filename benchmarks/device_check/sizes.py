"""How big each part runs: the full sizes (for under 8 minutes on one H100, each part capped) and
the toy sizes of --dry-run (CPU, tiny models, a few sentences, well under a minute)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# BertConfig settings; the vocabulary is always the real uncased one of the tokenizer used.
BERT_BASE = {
    "num_hidden_layers": 12,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
}
TOY_BERT = {
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
}
TOY_STUDENT = {
    "num_hidden_layers": 1,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_attention_heads": 2,
}


@dataclass(frozen=True)
class Sizes:
    device: str
    caps: dict[str, float]  # seconds each part may run
    mlm: dict[str, int]
    sentences: int  # kdaug exact and fast run on the first `sentences` of SST-2 dev
    n: int  # variants per sentence
    official_sentences: int  # an evenly spaced sample of them for the official algorithm ...
    official_budget_s: float  # ... stopping after the sentence that uses this up
    workers: tuple[
        int | str, ...
    ]  # K of --workers-per-device, in the order run (most wanted first)
    worker_rows: int  # SST-2 train rows per `kdaug augment` run
    shard_size: int
    teacher: dict[str, int]
    student: dict[str, Any]  # BertConfig settings, or a preset name of distill.models.PRESETS
    batch_size: int
    seq_len: int
    warm_steps: int
    timed_steps: int
    parity_rows: int


FULL = Sizes(
    device="cuda",
    caps={"gpu_tests": 70, "augment": 140, "augment_workers": 160, "distill": 70},
    mlm=BERT_BASE,
    sentences=872,
    n=20,
    official_sentences=200,
    official_budget_s=25,
    workers=(1, "auto", 8, 4, 2),
    worker_rows=3000,
    shard_size=250,
    teacher=BERT_BASE,
    student="tinybert4",
    batch_size=32,
    seq_len=64,
    warm_steps=3,
    timed_steps=20,
    parity_rows=8,
)

DRY = Sizes(
    device="cpu",
    # not enforced in the dry run's one process; generous, so that a busy machine does not fail it
    caps={"gpu_tests": 300, "augment": 300, "augment_workers": 300, "distill": 300},
    mlm=TOY_BERT,
    sentences=6,
    n=3,
    official_sentences=2,
    official_budget_s=5,
    workers=(1, 2),
    worker_rows=8,
    shard_size=4,
    teacher=TOY_BERT,
    student=TOY_STUDENT,
    batch_size=4,
    seq_len=32,
    warm_steps=1,
    timed_steps=2,
    parity_rows=4,
)


def sizes(dry_run: bool) -> Sizes:
    return DRY if dry_run else FULL
