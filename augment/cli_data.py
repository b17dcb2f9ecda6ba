"""`kdaug export` (shards -> a TSV the TinyBERT scripts read) and `kdaug inspect` (summary)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from augment.errors import KdaugError


def register(sub) -> None:
    p = sub.add_parser("export", help="write a built output as one TSV (TinyBERT train_aug.tsv)")
    p.add_argument("outdir", help="output directory of `kdaug augment`")
    p.add_argument("--format", choices=["tsv"], default="tsv")
    p.add_argument("-o", "--output", required=True, help="file to write, e.g. train_aug.tsv")
    p.add_argument(
        "--task", default=None, help="GLUE layout (sst2, mnli, ...; default: the build's --task)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("inspect", help="print a built output's summary and sampled variants")
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=5, help="variants to show (default 5)")
    p.add_argument("--seed", type=int, default=0, help="which variants to sample")
    p.set_defaults(func=cmd_inspect)


def load_manifest(outdir: str | Path) -> dict[str, Any]:
    path = Path(outdir) / "manifest.json"
    if not path.is_file():
        raise KdaugError(f"{outdir} has no manifest.json: is it the output of `kdaug augment`?")
    return json.loads(path.read_text(encoding="utf-8"))


def shard_files(outdir: str | Path, manifest: dict[str, Any]) -> list[Path]:
    """The recorded shards in order; refuses an unfinished build."""
    if not manifest.get("complete"):
        raise KdaugError(f"{outdir} is not complete: re-run its `kdaug augment` command first")
    return [Path(outdir) / e["file"] for _, e in sorted(manifest["shards"].items())]


def cmd_export(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from augment.io.writers import TsvExportWriter

    manifest = load_manifest(args.outdir)
    files = shard_files(args.outdir, manifest)
    task = args.task or (manifest.get("input") or {}).get("task")
    pair = manifest["fingerprint"]["columns"]["text_b"] is not None
    try:
        writer = TsvExportWriter(args.output, task, pair)
    except ValueError as exc:
        raise KdaugError(str(exc)) from None
    try:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=8192):
                writer.write(batch.to_pylist())
    except BaseException:
        writer.abort()
        raise
    writer.close()
    layout = f"GLUE {task} layout" if task else "generic layout"
    print(
        f"kdaug export: {writer.rows} rows -> {args.output} ({layout}); {writer.changed_rows} "
        "rows had tabs or line breaks inside a field, written as spaces"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import random

    import pyarrow.parquet as pq

    from augment.cli_augment import highlight
    from augment.records import Replacement

    m = load_manifest(args.outdir)
    shards = m["shards"]
    total = lambda key: sum(e[key] for e in shards.values())  # noqa: E731
    inp, cfg = m.get("input") or {}, m["fingerprint"]["config"]
    state = "complete" if m.get("complete") else "incomplete (re-run to resume)"
    print(f"{args.outdir}: {state}; {len(shards)} shards of {m['fingerprint']['shard_size']} rows")
    print(f"  input     {inp.get('path')} ({m['fingerprint']['format']}), sha256 {_short(inp)}")
    print(
        f"  rows      {total('rows_in')} in = {total('records')} records + "
        f"{total('rows_rejected')} rejected; {total('variants')} variants out"
    )
    print(
        f"  config    n={cfg['n']} p={cfg['p']} seed={cfg['seed']} mlm={cfg['mlm']} "
        f"vectors={cfg['vectors']} pos_filter={cfg['pos_filter']} sources={cfg['sources']}"
    )
    print(f"  versions  {m.get('versions')}")
    if not shards or args.samples <= 0:
        return 0
    rng = random.Random(args.seed)
    entry = shards[rng.choice(sorted(shards))]
    pf = pq.ParquetFile(Path(args.outdir) / entry["file"])
    if pf.metadata.num_rows == 0:
        return 0
    rows = pf.read_row_group(rng.randrange(pf.num_row_groups)).to_pylist()
    changed = [r for r in rows if r["variant"] > 0] or rows
    print(f"  samples from {entry['file']}:")
    for r in rng.sample(changed, min(args.samples, len(changed))):
        reps = [Replacement(**x) for x in r["replacements"]]
        line = highlight(r["text_a"], reps, "a", False)
        if r["text_b"] is not None:
            line += "  ||  " + highlight(r["text_b"], reps, "b", False)
        print(f"    {r['id']}#{r['variant']} [{r['label']}] {line}")
    return 0


def _short(inp: dict[str, Any]) -> str:
    sha = inp.get("sha256") or inp.get("hub_fingerprint") or "?"
    return sha[:16]
