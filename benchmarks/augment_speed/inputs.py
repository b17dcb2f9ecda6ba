"""What every model is measured on: the sentences (a GLUE-style tsv, else built-in ones), the
warm-up sentences, the evenly spaced sample the slow rows run, and the peers asked for."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.augment_speed.peers import PEERS

# Used when the SST-2 file is absent (tests, fresh machines): short review sentences.
BUILTIN_SENTENCES = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "the acting is sharp and the story moves along at a brisk pace .",
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "this is a dull , lifeless film that never finds its footing .",
    "an intelligent , moving portrait of a family in crisis .",
    "the director keeps the tension high until the final scene .",
    "too long , too loud and far too pleased with itself .",
    "a quiet , thoughtful drama with two excellent performances .",
    "the jokes fall flat and the characters are thin .",
    "a bright , funny and surprisingly tender comedy .",
]


def read_rows(path: Path | None, count: int) -> tuple[list[tuple[str, str | None]], str]:
    """The first `count` (sentence, label) rows of a GLUE-style tsv, or the built-in sentences."""
    if path is not None and path.is_file():
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            out = [
                (r["sentence"], r.get("label")) for _, r in zip(range(count), rows, strict=False)
            ]
        return out, f"{path.parent.name}/{path.name}"
    reps = -(-count // len(BUILTIN_SENTENCES))
    pool = [(s, None) for s in BUILTIN_SENTENCES] * max(1, reps)
    return pool[:count], "built-in sentences (data file not found)"


def mean_words(sentences: Sequence[str]) -> float:
    return round(sum(len(s.split()) for s in sentences) / max(1, len(sentences)), 1)


@dataclass
class Inputs:
    """What every model is measured on."""

    args: argparse.Namespace
    records: list
    warm: list
    slow_sentences: list[str]
    slow_warm: str
    peers: set[str]
    notes: list[str] = field(default_factory=list)


def load_inputs(args: argparse.Namespace) -> tuple[Inputs, str]:
    from augment import Record

    warm_n = 8
    rows, data_name = read_rows(args.data, args.limit + warm_n)
    if len(rows) > args.limit:
        warm_rows, rows = rows[args.limit :], rows[: args.limit]
    else:
        warm_rows = [(s, None) for s in BUILTIN_SENTENCES[:warm_n]]
    # the slow rows run on an evenly spaced sample of the same sentences
    step = max(1, len(rows) // max(1, args.slow_limit))
    peers = {p.strip().lower() for p in args.peers.split(",")} - {"none", ""}
    unknown = peers - {p.lower() for p in PEERS}
    if unknown:
        raise SystemExit(f"unknown peer(s) {sorted(unknown)}: choose nlpaug, textattack or none")
    inputs = Inputs(
        args=args,
        records=[Record(str(i), s, label=lab) for i, (s, lab) in enumerate(rows)],
        warm=[Record(f"w{i}", s, label=lab) for i, (s, lab) in enumerate(warm_rows)],
        slow_sentences=[s for s, _ in rows[::step]][: args.slow_limit],
        slow_warm=min((s for s, _ in warm_rows), key=len),
        peers=peers,
    )
    return inputs, data_name
