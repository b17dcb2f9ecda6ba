"""The dataset card (README.md) at the root of a build: YAML front matter that lets
`datasets.load_dataset(OUTDIR)` (and the Hub, after `push_to_hub` or an upload) find the shards
and their features, and a body saying what a reader of the data needs: how it was made and what
it holds. Written from the manifest and stats.json the build already keeps."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from augment.io.layout import ShardLayout, format_score
from kdaug.files import write_text_atomic

CARD_NAME = "README.md"
# The line that marks a card as kdaug's: only such a card is replaced or deleted by kdaug.
MARKER = (
    "<!-- kdaug dataset card: rewritten when the build completes. Delete this line to keep your "
    "edits (kdaug then leaves the file alone). -->"
)
SOURCES = ("mlm", "vectors", "wordnet")


def is_kdaug_card(path: Path) -> bool:
    """Whether `path` is a card kdaug wrote (it still carries the marker line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return any(line.rstrip("\n") == MARKER for line in f)
    except OSError:
        return False


def invocation() -> str | None:
    """The `kdaug ...` command line of this process, or None when kdaug runs as a library."""
    prog = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if prog is None or not (prog.name == "kdaug" or prog.parts[-2:] == ("augment", "cli.py")):
        return None
    return shlex.join(["kdaug", *sys.argv[1:]])


def write_card(
    out: Path, manifest: dict[str, Any], stats: dict[str, Any], layout: ShardLayout
) -> bool:
    """Write OUTDIR/README.md atomically; a README.md that is not kdaug's is left alone (and
    False returned)."""
    path = out / CARD_NAME
    if (path.exists() or path.is_symlink()) and not is_kdaug_card(path):
        return False
    write_text_atomic(path, card_text(manifest, stats, layout, invocation(), out))
    return True


def split_info(manifest: dict[str, Any], out: Path | None) -> list[dict[str, Any]]:
    """The train split's size as `datasets` records it. Besides what it says, it keys the
    `datasets` cache: that cache names a card's dataset by its folder name and a hash of the
    card's configs and dataset_info only, so two different builds both in folders named `out`
    would otherwise load each other's cached rows."""
    shards = (manifest.get("shards") or {}).values()
    rows = sum(int(s.get("variants", 0)) for s in shards)
    size = sum(
        (out / s["file"]).stat().st_size for s in shards if out and (out / s["file"]).is_file()
    )
    return [{"name": "train", "num_bytes": size, "num_examples": rows}]


def front_matter(
    layout: ShardLayout, manifest: dict[str, Any] | None = None, out: Path | None = None
) -> str:
    import yaml

    info: dict[str, Any] = {"features": layout.card_features()}
    if manifest is not None:
        info["splits"] = split_info(manifest, out)

    meta = {
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": "data/*.parquet"}],
            }
        ],
        "dataset_info": info,
        "tags": ["kdaug", "data-augmentation", "knowledge-distillation"],
    }
    return yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)


def _n(x: int) -> str:
    return f"{x:,}"


def card_text(
    manifest: dict[str, Any],
    stats: dict[str, Any],
    layout: ShardLayout,
    command: str | None,
    out: Path | None = None,
) -> str:
    """The card's text (no timings: the same build gives the same card)."""
    versions = manifest.get("versions") or {}
    inp = manifest.get("input") or {}
    cfg = manifest.get("config") or {}
    made = f"`{command}`" if command else "the Python API (`augment.build.build`)"
    lines = [
        "---",
        front_matter(layout, manifest, out).rstrip("\n"),
        "---",
        MARKER,
        "",
        "# Augmented transfer set",
        "",
        f"Written by kdaug {versions.get('kdaug') or manifest['fingerprint'].get('kdaug')} with "
        f"{made}. Each input record is kept as variant 0 and followed by up to {cfg.get('n', '?')} "
        "variants in which words were replaced; `replacements` lists each replaced word (character "
        "offsets in the variant, the original word, the new one, its source and rank).",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder", split="train")',
        "```",
        "",
        "## Counts",
        "",
        "| rows in | records | rows rejected | variants out | shards |",
        "|---|---|---|---|---|",
        f"| {_n(stats['rows_in'])} | {_n(stats['records'])} | {_n(stats['rows_rejected'])} | "
        f"{_n(stats['variants_out'])} | {stats['shards']} |",
        "",
        "Rejected rows are listed with their reasons in `rejects/part-NNNNN.jsonl`.",
        "",
        *_sources(stats),
        *_pos(stats, cfg),
        "## Columns",
        "",
        *_columns(layout),
        "",
        "## Input and settings",
        "",
        f"- input: `{inp.get('path')}` ({manifest['fingerprint'].get('format')}"
        + (f", task {inp['task']}" if inp.get("task") else "")
        + f"), sha256 `{inp.get('sha256') or inp.get('hub_fingerprint')}`",
        f"- models: {', '.join(f'{k} {v}' for k, v in sorted(versions.items()) if k != 'kdaug') or '-'}",
        "",
        "```json",
        json.dumps(cfg, indent=2, sort_keys=True, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def _sources(stats: dict[str, Any]) -> list[str]:
    reps = {s: int(stats.get("replacements", {}).get(s, 0)) for s in SOURCES}
    total = sum(reps.values())
    rows = [f"| {s} | {_n(reps[s])} | {100 * reps[s] / total:.1f}% |" for s in SOURCES if total]
    return [
        "## Replacements by source",
        "",
        "| source | replacements | share |",
        "|---|---|---|",
        *(rows or ["| - | 0 | - |"]),
        f"| all | {_n(total)} | 100% |" if total else "",
        "",
    ]


def _pos(stats: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    words = sum(int(v) for v in stats.get("words", {}).values())
    rejected = int(stats.get("candidates_pos_rejected", 0))
    no_candidate = int(stats.get("words_without_candidates", 0))
    mode = cfg.get("pos_filter", "?")
    text = (
        f"POS filter `{mode}`: a candidate is kept only when its part of speech agrees with the "
        f"replaced word's. {_n(rejected)} candidates were rejected for disagreeing "
        f"({rejected / max(words, 1):.2f} per eligible word); {_n(no_candidate)} of {_n(words)} "
        "eligible words were left without a candidate."
    )
    if mode == "none":
        text = "POS filter `none`: candidates were not checked against the word's part of speech."
    return ["## Part-of-speech agreement", "", text, ""]


def _columns(layout: ShardLayout) -> list[str]:
    cols = [
        "- `id`: the input record's id (its 0-based row number when the input has no id column)",
        "- `variant`: 0 for the original record, 1, 2, ... for its variants",
        "- `text_a`" + (", `text_b`: the texts" if layout.pair else ": the text"),
    ]
    if layout.label == "class":
        names = ", ".join(f"{i} {n}" for i, n in enumerate(layout.names))
        cols.append(f"- `label`: ClassLabel ({names}); -1: no label")
    elif layout.label == "score":
        cols.append(f"- `label`: float32 score; {format_score(-1.0)}: no label")
    elif layout.label == "string":
        cols.append("- `label`: the input's label text")
    if layout.label != "none":
        cols.append(
            "  Variants inherit their record's label, which a replaced word can make wrong; to "
            "train on hard labels, relabel them with a teacher (`kdaug teacher-logits`, then "
            "`kdaug export --labels teacher`)."
        )
    cols.append("- `replacements`: the replaced words of the variant (empty for variant 0)")
    if layout.passthrough:
        names = ", ".join(f"`{n}`" for n in layout.passthrough)
        cols.append(
            f"- `passthrough`: the input's other columns, as text, the same for every variant of "
            f"a record: {names}"
        )
    return cols


def remove_card(out: Path) -> None:
    """Delete OUTDIR/README.md if kdaug wrote it."""
    path = out / CARD_NAME
    if path.is_file() and not path.is_symlink() and is_kdaug_card(path):
        os.unlink(path)
