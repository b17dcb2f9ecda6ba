"""Shared pieces of the builder tests: small inputs, the fast settings, and byte comparisons."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from augment.builder import BuildSpec, build
from augment.config import AugmentConfig
from augment.executors import SerialExecutor
from augment.io.readers import columns_for

SENTENCES = [
    "the film is a charming and often moving story about a family",
    "a dull script and tired acting make this movie hard to watch",
    "the director finds real beauty in quiet moments",
    "an ambitious , sprawling epic that never quite comes together",
    "the actors clearly enjoyed making this funny little picture",
    "slow , predictable and ultimately forgettable",
    "a gripping thriller with a clever twist at the end",
    "the music carries the weak plot for a while",
    "it is a bold experiment that rewards patient viewers",
    "nothing here feels fresh or surprising",
    "she gives a warm performance as the lonely teacher",
    "the story wanders and the jokes fall flat",
]
# Settings every test build uses: fast (no masked LM, lexicon POS filter, 3 variants).
SETTINGS = {"mlm": "none", "n": 3, "pos_filter": "lexicon", "device": "cpu"}
CLI_SETTINGS = ["--mlm", "none", "--n", "3", "--pos-filter", "lexicon", "--device", "cpu"]
SHARD_SIZE = 20


def write_sst2(path: Path, rows: int) -> Path:
    """A GLUE SST-2 style tsv of `rows` distinct sentences."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("sentence\tlabel\n")
        for i in range(rows):
            f.write(f"{SENTENCES[i % len(SENTENCES)]} ( take {i} )\t{i % 2}\n")
    return path


def make_spec(input: Path, output: Path, **kw) -> BuildSpec:
    config = AugmentConfig.build(**{**SETTINGS, **kw.pop("config", {})})
    kw.setdefault("columns", columns_for("sst2"))
    kw.setdefault("task", "sst2")
    kw.setdefault("shard_size", SHARD_SIZE)
    return BuildSpec(input=str(input), output=output, config=config, **kw)


def build_with(spec: BuildSpec, augmenter) -> dict:
    """Build in this process with an already loaded Augmenter."""
    return build(spec, executor=SerialExecutor(spec.config, augmenter))


def shard_bytes(out: Path) -> dict[str, bytes]:
    """Every shard and rejects file of an output, by relative path."""
    files = sorted((out / "data").glob("*.parquet")) + sorted((out / "rejects").glob("*.jsonl"))
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


def kdaug_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "augment.cli", *args]


def read_tsv(path: Path) -> list[list[str]]:
    """As the TinyBERT scripts read it: tab-delimited, no quote character."""
    with open(path, encoding="utf-8") as f:
        return list(csv.reader(f, delimiter="\t", quotechar=None))
