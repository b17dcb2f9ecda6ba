"""The builder's bookkeeping: the same tiny rows (`--mlm none --n 1`) built in one shard and in
thousands of shards of a few rows, in this process with one Augmenter loaded once, so that the
difference is what each shard costs besides its text (its Parquet file, its completion record,
the coordinator's work). Also the time per shard of the first and the last shards of the
many-shard build: flat when the bookkeeping is O(1) per shard.

    python -m benchmarks.bookkeeping [--data SST-2/train.tsv] [--rows 20000] [--shard-size 5]

Both builds run in the same process after a small warm-up build, with one BLAS / OpenMP / torch
thread (what each worker process of the local executor gets when workers share the cores): with
a thread pool per process, tiny batches on a busy machine measure thread spin-up rather than
bookkeeping. Wall and CPU seconds are both given: on a machine that other jobs share, this
process's CPU time is the steadier figure. Prints tables; --json writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.paths import shared_assets, shown
from kdaug.files import write_text_atomic

SETTINGS = {"mlm": "none", "n": 1, "device": "cpu"}
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy and torch load


def write_input(src: Path, dst: Path, rows: int) -> Path:
    """The header and the first `rows` data rows of the GLUE tsv `src`."""
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i > rows:
                break
            g.write(line)
    return dst


def clocks() -> tuple[float, float]:
    """(wall, CPU) seconds: CPU time is what this process used, whatever else the machine runs."""
    return time.perf_counter(), time.process_time()


class Timed:
    """An executor that notes when each shard's result reaches the coordinator."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.times: list[tuple[float, float]] = []

    def map_unordered(self, tasks, progress):
        for result in self.inner.map_unordered(tasks, progress):
            self.times.append(clocks())
            yield result


def build_once(src: Path, out: Path, shard_size: int, augmenter) -> dict[str, Any]:
    """One build of `src` into `out` (replaced); wall seconds and the per-shard times."""
    import shutil

    from augment.build.build import build
    from augment.build.executors import SerialExecutor
    from augment.build.spec import BuildSpec
    from augment.io.readers import columns_for

    shutil.rmtree(out, ignore_errors=True)
    spec = BuildSpec(
        input=str(src),
        output=out,
        config=augmenter.config,
        columns=columns_for("sst2"),
        task="sst2",
        shard_size=shard_size,
    )
    timed = Timed(SerialExecutor(spec.config, augmenter))
    start = clocks()
    stats = build(spec, executor=timed)
    end = clocks()
    marks = [start, *timed.times]
    gaps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:], strict=False)]
    return {
        "wall_s": round(end[0] - start[0], 2),
        "cpu_s": round(end[1] - start[1], 2),
        "shards": stats["shards"],
        "gaps": gaps,
    }


def per_shard_ms(gaps: list[tuple[float, float]], window: int, clock: int) -> tuple[float, float]:
    """Mean milliseconds per shard (clock 0: wall, 1: CPU) of the first and last `window` shards."""
    first, last = gaps[:window], gaps[-window:]
    return (
        1000 * statistics.fmean(g[clock] for g in first),
        1000 * statistics.fmean(g[clock] for g in last),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=shared_assets() / "glue" / "SST-2" / "train.tsv")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--shard-size", type=int, default=5, help="rows per shard of the many")
    ap.add_argument("--window", type=int, default=500, help="first / last shards compared")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    from augment.build.shard import load_augmenter
    from augment.config import AugmentConfig

    augmenter, _ = load_augmenter(AugmentConfig.build(**SETTINGS).model_dump(), "cpu", 1)
    with tempfile.TemporaryDirectory() as tmp:
        src = write_input(args.data, Path(tmp) / "train.tsv", args.rows)
        out = Path(tmp) / "out"
        warm = write_input(args.data, Path(tmp) / "warm.tsv", 100)
        build_once(warm, out, 100, augmenter)  # warm-up: spaCy's first use
        one_shard = build_once(src, out, args.rows, augmenter)
        many = build_once(src, out, args.shard_size, augmenter)
    n = many["shards"]
    result = {
        "rows": args.rows,
        "settings": SETTINGS,
        "one_shard": {k: one_shard[k] for k in ("wall_s", "cpu_s")},
        "many_shards": {"shards": n, **{k: many[k] for k in ("wall_s", "cpu_s")}},
        "ratio_wall": round(many["wall_s"] / one_shard["wall_s"], 2),
        "ratio_cpu": round(many["cpu_s"] / one_shard["cpu_s"], 2),
        "window": args.window,
        "data": shown(args.data),
        "threads": 1,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"| {args.rows:,} rows, --mlm none --n 1, one process | wall s | ratio | CPU s | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(f"| 1 shard | {one_shard['wall_s']:.1f} | 1.00 | {one_shard['cpu_s']:.1f} | 1.00 |")
    print(f"| {n:,} shards of {args.shard_size} rows | {many['wall_s']:.1f} | "
          f"{result['ratio_wall']:.2f} | {many['cpu_s']:.1f} | {result['ratio_cpu']:.2f} |")  # fmt: skip
    print()
    print(f"| time per shard ({n:,} shards) | wall ms | ratio | CPU ms | ratio |")
    print("|---|---:|---:|---:|---:|")
    for clock, name in ((0, "wall"), (1, "cpu")):
        first, last = per_shard_ms(many["gaps"], args.window, clock)
        result[f"per_shard_ms_{name}"] = {"first": round(first, 2), "last": round(last, 2)}
        result[f"ratio_last_to_first_{name}"] = round(last / first, 3)
    w, c = result["per_shard_ms_wall"], result["per_shard_ms_cpu"]
    print(f"| first {args.window} shards | {w['first']:.2f} | 1.00 | {c['first']:.2f} | 1.00 |")
    print(f"| last {args.window} shards | {w['last']:.2f} | {result['ratio_last_to_first_wall']:.2f} "
          f"| {c['last']:.2f} | {result['ratio_last_to_first_cpu']:.2f} |")  # fmt: skip
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
