"""The sharded builder: throughput with 1 and 2 workers, peak memory versus corpus size, the
cost of re-running a finished build, and with a masked LM (the shared adapted MiniLM when present)
one process held to one torch thread (the CPU default before `--workers auto`) and
`--workers 1` against `--workers auto` in both modes. Each measurement is one `kdaug augment`
process.

    python -m benchmarks.builder [--data SST-2/train.tsv] [--memory-rows 10000,100000]
    python -m benchmarks.builder --parts mlm --mlm-rows 1000   # the workers table only

Inputs are synthesised by repeating the data's sentences under distinct ids. Prints tables
(ratios are against the 1-worker run and the smallest corpus of the same run); --json writes them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.paths import shared_assets
from kdaug.files import write_text_atomic

COLUMNS = ["--text-column", "sentence", "--label-column", "label", "--id-column", "id"]
# Throughput: the default augmentation without a masked LM (word vectors, 20 variants).
THROUGHPUT = ["--mlm", "none", "--pos-filter", "lexicon"]
# Memory: the cheapest settings, so that 100k rows finish in minutes; memory is what is measured.
CHEAP = ["--mlm", "none", "--n", "1", "--p", "0.1", "--pos-filter", "none"]


def sentences(path: Path | None) -> list[tuple[str, str]]:
    if path is None or not path.is_file():
        words = [
            "the",
            "a",
            "film",
            "story",
            "actor",
            "plot",
            "scene",
            "moving",
            "dull",
            "bright",
            "quiet",
            "long",
        ]
        return [(" ".join(words[(i + j) % 12] for j in range(9)), str(i % 2)) for i in range(500)]
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["sentence"], r["label"]) for r in rows]


def write_input(path: Path, rows: int, pool: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("id\tsentence\tlabel\n")
        for i in range(rows):
            text, label = pool[i % len(pool)]
            f.write(f"r{i}\t{text}\t{label}\n")
    return path


def run(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall seconds and peak RSS (MiB, the largest process) of one `kdaug augment`, and the
    `workers auto:` line it logged (if any)."""
    cmd = [sys.executable, "-m", "kdaug.cli", "augment", *args]
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **(env or {})}
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        log = err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out}\n{log[-2000:]}")
    # wait4's ru_maxrss covers the process and the workers it reaped: the largest of them.
    cpu = usage.ru_utime + usage.ru_stime
    plan = [
        line.split("workers auto: ", 1)[1] for line in log.splitlines() if "workers auto: " in line
    ]
    return {
        "seconds": wall,
        "cpu_s": cpu,
        "rss_mib": usage.ru_maxrss / 1024,
        "log": out.strip(),
        "plan": plan[0] if plan else "",
    }


def same_shards(a: Path, b: Path) -> bool:
    files_a = sorted(p.name for p in (a / "data").glob("*.parquet"))
    files_b = sorted(p.name for p in (b / "data").glob("*.parquet"))
    return files_a == files_b and all(
        (a / "data" / f).read_bytes() == (b / "data" / f).read_bytes() for f in files_a
    )


# Rows of the workers table: (label, --workers, extra environment). "1, 1 thread" is one
# process held to one torch thread, the CPU default before `--workers auto`.
WORKER_ROWS = (("1, 1 thread", "1", {"OMP_NUM_THREADS": "1"}), ("1", "1", {}), ("auto", "auto", {}))


def workers_table(tmp: Path, pool: list, rows: int, mlm: str, modes: list[str]) -> list[dict]:
    """One process with one thread, `--workers 1` and `--workers auto` with a masked LM, in each
    mode, on `rows` rows in 8 shards. fast mode's int8 calibration is cached (a 1-row build)
    before the timed runs, as it is after a model's first use, so that every run reads it from
    the cache."""
    src = write_input(tmp / "mlm.tsv", rows, pool)
    shard = ["--shard-size", str(max(1, rows // 8))]
    env = {"KDAUG_CACHE": str(tmp / "cache")}
    results = []
    for mode in modes:
        common = [*COLUMNS, "--mlm", mlm, "--mode", mode, "--device", "cpu", *shard]
        if mode == "fast":
            warm = write_input(tmp / "warm.tsv", 1, pool)
            run([str(warm), "-o", str(tmp / "warm"), *common, "--overwrite"], env)
        outs, rows_of_mode = [], []
        for i, (label, workers, extra) in enumerate(WORKER_ROWS):
            outs.append(tmp / f"mlm-{mode}-{i}")
            r = run([str(src), "-o", str(outs[i]), *common, "--workers", workers], {**env, **extra})
            rows_of_mode.append({"mode": mode, "workers": label, "rows": rows, **r})
        auto = rows_of_mode[-1]  # the last row of WORKER_ROWS
        for r, out in zip(rows_of_mode[:-1], outs[:-1], strict=True):
            r["auto_ratio"] = r["seconds"] / auto["seconds"]
            r["identical"] = same_shards(out, outs[-1])
        results.extend(rows_of_mode)
    return results


def report_workers(results: list[dict], mlm: str) -> None:
    print(f"\n# one process vs --workers auto, masked LM {Path(mlm).name} ({os.cpu_count()} cores)")
    print(
        "| mode | workers | plan | rows | wall s | CPU s | rows/s | auto speed-up | same shards as auto |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r['auto_ratio']:.2f}x" if "auto_ratio" in r else ""
        same = str(r["identical"]) if "identical" in r else ""
        print(
            f"| {r['mode']} | {r['workers']} | {r['plan'] or '-'} | {r['rows']} | "
            f"{r['seconds']:.1f} | {r['cpu_s']:.1f} | {r['rows'] / r['seconds']:.1f} | "
            f"{ratio} | {same} |"
        )


def _burn(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def cpu_scaling(n: int = 10_000_000) -> float:
    """How much faster two processes of pure-Python work finish than one doing both: the
    parallelism this machine offers right now (2.0 on two free cores)."""
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    _burn(n)
    _burn(n)
    serial = time.perf_counter() - t0
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_burn, [10, 10]))  # start the processes outside the timing
        t0 = time.perf_counter()
        list(pool.map(_burn, [n, n]))
        return serial / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    assets = shared_assets()
    ap.add_argument("--data", type=Path, default=assets / "glue" / "SST-2" / "train.tsv")
    ap.add_argument("--throughput-rows", type=int, default=4000)
    ap.add_argument("--memory-rows", default="10000,100000")
    ap.add_argument("--mlm", default=str(assets / "mlm-minilm-adapted"))
    ap.add_argument("--mlm-rows", type=int, default=1000)
    ap.add_argument("--modes", default="exact,fast")
    ap.add_argument(
        "--parts", default="builder,mlm", help="builder (throughput, re-run, memory), mlm, or both"
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    pool = sentences(args.data)
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workers = []
        if "mlm" in parts:
            if (Path(args.mlm) / "config.json").is_file():
                modes = args.modes.split(",")
                workers = workers_table(tmp, pool, args.mlm_rows, args.mlm, modes)
            else:
                print(f"no masked LM at {args.mlm}: the workers table is skipped (--mlm PATH)")
        results = builder_runs(tmp, pool, args) if "builder" in parts else []
    if results:
        report(*results)
    if workers:
        report_workers(workers, args.mlm)
    if args.json:
        rows = (results[0] if results else []) + workers
        write_text_atomic(Path(args.json), json.dumps(rows, indent=2, default=str))


def builder_runs(tmp: Path, pool: list, args) -> tuple[list[dict], bool, float]:
    """Throughput with 1 and 2 workers (no masked LM), a re-run, and memory by corpus size."""
    results: list[dict] = []
    n = args.throughput_rows
    src = write_input(tmp / "tp.tsv", n, pool)
    shard = ["--shard-size", str(max(1, n // 8))]
    for workers in (1, 2):
        r = run(
            [
                str(src),
                "-o",
                str(tmp / f"w{workers}"),
                *COLUMNS,
                *THROUGHPUT,
                *shard,
                "--workers",
                str(workers),
            ]
        )
        results.append(
            {
                "what": f"throughput, {workers} worker(s), {n} rows",
                **r,
                "rows_per_s": n / r["seconds"],
            }
        )
    r = run([str(src), "-o", str(tmp / "w1"), *COLUMNS, *THROUGHPUT, *shard])
    results.append({"what": f"re-run of the finished {n}-row build", **r, "rows_per_s": None})
    for rows in (int(x) for x in args.memory_rows.split(",")):
        src = write_input(tmp / f"m{rows}.tsv", rows, pool)
        r = run([str(src), "-o", str(tmp / f"m{rows}"), *COLUMNS, *CHEAP])
        results.append(
            {"what": f"memory, {rows} rows (1 worker)", **r, "rows_per_s": rows / r["seconds"]}
        )
    identical = same_shards(tmp / "w1", tmp / "w2")
    return results, identical, cpu_scaling()


def report(results: list[dict], identical: bool, scaling: float) -> None:
    base_tp = results[0]["rows_per_s"]
    base_build = results[0]["seconds"]
    mem = [r for r in results if r["what"].startswith("memory")]
    print(
        f"# kdaug builder benchmark ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end)"
    )
    print(
        "| measurement | wall s | CPU s | cores got | rows/s | ratio | peak RSS MiB | RSS ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        if r["what"].startswith("throughput"):
            ratio = f"{r['rows_per_s'] / base_tp:.2f}x rows/s"
        elif r["what"].startswith("re-run"):
            ratio = f"{r['seconds'] / base_build:.3f}x of the build's time"
        else:
            ratio = ""
        rss_ratio = f"{r['rss_mib'] / mem[0]['rss_mib']:.2f}x" if r in mem else ""
        rps = f"{r['rows_per_s']:.1f}" if r["rows_per_s"] else "-"
        print(
            f"| {r['what']} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | "
            f"{r['cpu_s'] / r['seconds']:.2f} | {rps} | {ratio} | {r['rss_mib']:.0f} | {rss_ratio} |"
        )
    print(f"2-worker shards byte-identical to 1-worker shards: {identical}")
    print(f"CPU scaling available (2 pure-Python processes vs 1, same run): {scaling:.2f}x")


if __name__ == "__main__":
    main()
