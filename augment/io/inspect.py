"""A build's summary and a few of its variants with their replacements marked (`kdaug inspect`),
and the marking itself (`kdaug sample` prints variants the same way).

The build is read through its manifest.json: a damaged manifest, or a finished shard that is
missing or does not match its sha256, is a one-line KdaugError.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from augment.records import Replacement
from kdaug.errors import KdaugError, one_line
from kdaug.manifest import REBUILD, load_build, verified_shards
from kdaug.terminal import printable


def inspect_build(outdir: str | Path, samples: int = 5, seed: int = 0) -> Iterator[str]:
    """The lines of a build's summary (state, input, row counts, settings, versions, columns),
    then `samples` variants of one shard (which ones: from `seed`), every piece of user text
    `printable`. Lazy: the summary comes before a damaged shard's error."""
    out = Path(outdir)
    manifest = load_build(out)
    verified_shards(out, manifest, allow_incomplete=True)  # every finished shard as recorded
    m = manifest.to_dict()
    shards = m["shards"]
    yield from _summary(str(outdir), m)
    if not shards or samples <= 0:
        return
    rng = random.Random(seed)
    name = rng.choice(sorted(shards))
    entry = shards[name]
    rows, codec = _read_row_group(out, name, entry, rng, m["fingerprint"]["columns"].get("task"))
    if not rows:
        return
    changed = [r for r in rows if r["variant"] > 0] or rows
    yield printable(f"  samples from {entry['file']}:")
    for r in rng.sample(changed, min(samples, len(changed))):
        reps = [Replacement(**x) for x in r["replacements"]]
        line = marked(r["text_a"], r.get("text_b"), reps)
        label = r.get("label")
        if codec.kind == "class" and isinstance(label, int) and 0 <= label < len(codec.names):
            label = codec.names[label]
        elif isinstance(label, float):
            label = codec.text(label)
        yield f"    {printable(r['id'])}#{r['variant']} [{printable(label)}] {line}"


def _summary(outdir: str, m: dict[str, Any]) -> Iterator[str]:
    shards = m["shards"]
    total = lambda key: sum(e[key] for e in shards.values())  # noqa: E731
    inp, cfg = m.get("input") or {}, m["fingerprint"]["config"]
    state = "complete" if m.get("complete") else "incomplete (re-run to resume)"
    shard_size = m["fingerprint"]["shard_size"]
    yield printable(f"{outdir}: {state}; {len(shards)} shards of {shard_size} rows")
    fmt = m["fingerprint"]["format"]
    yield printable(f"  input     {inp.get('path')} ({fmt}), sha256 {_short(inp)}")
    yield (
        f"  rows      {total('rows_in')} in = {total('records')} records + "
        f"{total('rows_rejected')} rejected; {total('variants')} variants out"
    )
    keys = ("n", "p", "seed", "mlm", "vectors", "pos_filter", "sources")
    yield printable("  config    " + " ".join(f"{k}={cfg.get(k, '?')}" for k in keys))
    yield printable(f"  versions  {m.get('versions')}")
    if isinstance(m.get("shard_layout"), dict):
        yield printable(f"  columns   {_columns_line(m['shard_layout'])}")


def _read_row_group(out: Path, name: str, entry: dict[str, Any], rng, task: str | None):
    """The rows of one row group of a shard (picked by `rng`) and its label codec; no rows for
    an empty shard."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from augment.io.layout import LabelCodec

    try:
        pf = pq.ParquetFile(out / entry["file"])
        if pf.metadata.num_rows == 0:
            return [], None
        rows = pf.read_row_group(rng.randrange(pf.num_row_groups)).to_pylist()
        codec = LabelCodec.for_shards(pf.schema_arrow, task)
    except (pa.ArrowException, OSError) as exc:
        raise KdaugError(
            f"{out} is damaged: cannot read shard {name} ({entry['file']}: "
            f"{one_line(exc, 200)}); {REBUILD}"
        ) from None
    return rows, codec


def _columns_line(layout: dict[str, Any]) -> str:
    """The shard columns of a build, in a line: texts, the label's kind, pass-through columns."""
    texts = "text_a, text_b" if layout.get("pair") else "text_a"
    kind = layout.get("label")
    label = {
        "class": f"label ClassLabel({', '.join(layout.get('names') or [])})",
        "score": "label float32 score",
        "string": "label string",
    }.get(kind, "no label")
    extra = layout.get("passthrough") or []
    passthrough = f"; passthrough {', '.join(extra)}" if extra else ""
    return f"{texts}; {label}{passthrough}"


def _short(inp: dict[str, Any]) -> str:
    sha = inp.get("sha256") or inp.get("hub_fingerprint") or "?"
    return str(sha)[:16]


# --- variants with their replacements marked ------------------------------------------------------


def highlight(text: str, reps: Iterable[Replacement], field: str, color: bool) -> str:
    """`text` with the replacements of `field` marked (bold green, or `[new|old:source rank]`),
    every piece of user text `printable`."""
    out, pos = [], 0
    for r in sorted((r for r in reps if r.field == field), key=lambda r: r.start):
        out.append(printable(text[pos : r.start]))
        word = printable(text[r.start : r.end])
        tag = f"{r.source[0]}{r.rank}"
        out.append(
            f"\033[1;32m{word}\033[0m" if color else f"[{word}|{printable(r.original)}:{tag}]"
        )
        pos = r.end
    out.append(printable(text[pos:]))
    return "".join(out)


def marked(text_a: str, text_b: str | None, reps: list[Replacement], color: bool = False) -> str:
    """A variant's texts (a pair joined by "  ||  ") with their replacements marked."""
    line = highlight(text_a, reps, "a", color)
    if text_b is not None:
        line += "  ||  " + highlight(text_b, reps, "b", color)
    return line
