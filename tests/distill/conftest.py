"""Fixtures of the distillation tests: a tiny fine-tuned-shaped teacher and kdaug shards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

PAIRS = [
    ("the cat sat on the mat", "a cat was sitting on the mat", "1"),
    ("stocks fell sharply on monday", "shares dropped a lot on monday", "1"),
    ("he likes green apples", "the weather is cold today", "0"),
    ("the film was long and dull", "the movie was boring and long", "1"),
    ("she bought a new car", "the river flows to the sea", "0"),
    ("prices rose in march", "in march the prices went up", "1"),
    ("the team won the final", "a dog barked all night", "0"),
    ("we met at the station", "they never met anywhere at all before", "0"),
]


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """Tiny models run fastest on one thread, and the tests share the machine's cores."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def pairs() -> list[tuple[str, str, str]]:
    return PAIRS


@pytest.fixture(scope="session")
def tokenizer_dir() -> str:
    """The folder of the packaged MiniLM encoder: its uncased WordPiece tokenizer."""
    from kdaug.resolve import packaged_minilm_path

    return str(packaged_minilm_path())


def _make_classifier(out: Path, tokenizer_dir: str, layers: int, seed: int = 0) -> Path:
    """A tiny random BertForSequenceClassification (no dropout, so runs are comparable exactly)
    with the real uncased vocabulary, saved with save_pretrained."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def make_classifier(tokenizer_dir: str) -> Callable[..., Path]:
    """make_classifier(out, layers, seed=0) -> a saved tiny classifier folder."""
    return lambda out, layers, seed=0: _make_classifier(out, tokenizer_dir, layers, seed)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: str) -> Path:
    return _make_classifier(tmp_path_factory.mktemp("teacher"), tokenizer_dir, layers=4)


def _write_shards(out: Path, rows: list[tuple[str, str, str]], variants: int = 3) -> Path:
    """Shards in a directory: data/part-NNNNN.parquet in the documented schema, without a
    manifest (a folder of Parquet files; tests of builds make real ones with `kdaug augment`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from augment.io.writers import VARIANT_SCHEMA

    (out / "data").mkdir(parents=True, exist_ok=True)
    half = len(rows) // 2
    for part, chunk in enumerate((rows[:half], rows[half:])):
        recs = []
        for i, (a, b, label) in enumerate(chunk):
            for v in range(variants):
                words = a.split()
                words = words[v:] + words[:v]  # a cheap stand-in for a replaced word
                recs.append(
                    {
                        "id": f"{part}-{i}",
                        "variant": v,
                        "text_a": " ".join(words),
                        "text_b": b,
                        "label": label,
                        "replacements": [],
                    }
                )
        pq.write_table(
            pa.Table.from_pylist(recs, schema=VARIANT_SCHEMA),
            out / "data" / f"part-{part:05d}.parquet",
        )
    return out


@pytest.fixture(scope="session")
def write_shards() -> Callable[..., Path]:
    """write_shards(out, rows, variants=3) -> a kdaug shard directory."""
    return _write_shards


@pytest.fixture()
def shards(tmp_path: Path) -> Path:
    return _write_shards(tmp_path / "aug", PAIRS)


@pytest.fixture(scope="session")
def mrpc_dev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dev file in the GLUE MRPC layout (BOM, header, quotes left as they are)."""
    out = tmp_path_factory.mktemp("mrpc") / "dev.tsv"
    lines = ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    lines += [f"{lab}\t{i}\t{i + 100}\t{a}\t{b}" for i, (a, b, lab) in enumerate(PAIRS)]
    lines.append('1\t9\t109\tHe said "yes" to it.\tHe agreed, saying "yes".')
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
