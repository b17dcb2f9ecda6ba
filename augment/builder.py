"""The sharded dataset builder behind `kdaug augment`.

The coordinator streams the input once, cutting it into shards of `shard_size` input rows, and
hands each unfinished shard (its rows travel with the task) to an executor; at most a few shards
are in flight, so memory does not grow with the corpus. A worker writes its shard under a
temporary name and renames it when durable; only then does the coordinator record it in
manifest.json (atomically). Re-running the same command verifies and skips recorded shards.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from augment import __version__
from augment.config import AugmentConfig
from augment.errors import InputError, KdaugError
from augment.executors import ShardResult, ShardTask, shard_name
from augment.io.readers import Columns, describe_input, read_records, resolve_format
from augment.io.writers import sha256_file, write_json_atomic
from augment.records import Record, Reject

log = logging.getLogger(__name__)
LAYOUT_FORMAT = "kdaug-shards/1"
LAYOUT = ("data", "rejects", "manifest.json", "stats.json")


@dataclass
class BuildSpec:
    """Everything `kdaug augment` was asked to do."""

    input: str
    output: Path
    config: AugmentConfig
    columns: Columns
    fmt: str | None = None
    split: str = "train"
    task: str | None = None
    shard_size: int = 10_000
    workers: int | None = None
    executor: str = "local"
    address: str | None = None
    overwrite: bool = False


def build(spec: BuildSpec, executor=None) -> dict[str, Any]:
    """Build (or resume, or verify) the sharded output of `spec`; returns the stats."""
    from tqdm import tqdm

    from augment.executors import make_executor

    t0 = time.perf_counter()
    if spec.shard_size < 1:
        raise KdaugError("--shard-size must be at least 1")
    fmt = resolve_format(spec.input, spec.fmt)
    info = describe_input(spec.input, fmt, spec.split, spec.columns.header)
    fingerprint = {
        "input": {k: v for k, v in info.items() if k in ("sha256", "hub_fingerprint")},
        "format": fmt,
        "split": spec.split if fmt == "hf" else None,
        "columns": asdict(spec.columns),
        "shard_size": spec.shard_size,
        "config": spec.config.fingerprint_dict(),
        "kdaug": __version__,
    }
    out = spec.output
    manifest = open_output(out, fingerprint, spec.overwrite)
    manifest["input"] = {"path": str(spec.input), "task": spec.task, **info}
    manifest["config"] = spec.config.model_dump()
    finished = verify_shards(out, manifest)
    if manifest["complete"] and len(finished) == manifest["num_shards"]:
        sp = out / "stats.json"
        stats = json.loads(sp.read_text()) if sp.is_file() else write_stats(out, manifest, 0, 0, 0)
        print(
            f"kdaug augment: {out} is complete: {len(finished)} shards verified in "
            f"{time.perf_counter() - t0:.2f} s; {stats['rows_in']} rows in = {stats['records']} "
            f"records + {stats['rows_rejected']} rejected; {stats['variants_out']} variants"
        )
        return stats

    executor = executor or make_executor(spec)
    done_rows = sum(e["rows_in"] for e in finished.values())
    bar = tqdm(
        total=max(info["rows_estimate"], done_rows) or None,
        initial=done_rows,
        desc="augment",
        unit=" rows",
        dynamic_ncols=True,
    )
    plan: dict[str, int] = {"rows": 0, "shards": 0}
    new_rows, load_s = 0, 0.0
    try:
        tasks = plan_tasks(spec, fmt, set(finished), plan)
        for res in executor.map_unordered(tasks, bar.update):
            _check_versions(manifest, res.versions, out)
            manifest["shards"][shard_name(res.index)] = _entry(res)
            write_json_atomic(out / "manifest.json", manifest)
            new_rows += res.rows_in
            load_s += res.load_seconds
            bar.set_postfix(shards=len(manifest["shards"]))
    finally:
        bar.close()
    manifest["num_shards"] = plan["shards"]
    check_accounting(manifest, plan["rows"], spec.input)
    stats = write_stats(out, manifest, time.perf_counter() - t0, new_rows, load_s)
    manifest["complete"] = True  # after stats.json: a complete manifest implies both exist
    write_json_atomic(out / "manifest.json", manifest)
    summary(stats, out, resumed=len(finished), new=plan["shards"] - len(finished))
    return stats


def open_output(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest of `out`: loaded when it matches `fingerprint`, else new (refusing to mix
    with other output unless `overwrite`)."""
    mf = out / "manifest.json"
    if overwrite:
        for name in LAYOUT:
            p = out / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    elif mf.is_file():
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        if manifest.get("fingerprint") != fingerprint:
            what = _differences(manifest.get("fingerprint") or {}, fingerprint)
            raise KdaugError(
                f"{out} holds output built with a different {what}: pass --overwrite to "
                "replace it, or choose another --output"
            )
        return manifest
    elif out.is_dir() and any(not p.name.endswith(".tmp") for p in out.iterdir()):
        raise KdaugError(f"output {out} is not empty and has no manifest.json: pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": LAYOUT_FORMAT,
        "fingerprint": fingerprint,
        "versions": None,
        "shards": {},
        "num_shards": None,
        "complete": False,
    }
    write_json_atomic(mf, manifest)
    return manifest


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = [k for k in new if k != "config" and old.get(k) != new[k]]
    oc, nc = old.get("config") or {}, new["config"]
    keys += [f"config.{k}" for k in nc if oc.get(k) != nc[k]]
    return ", ".join(keys[:6]) or "layout"


def verify_shards(out: Path, manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Recorded shards whose files still match their checksums; the others are dropped from the
    manifest (and redone). Leftover temporary files of interrupted writes are removed."""
    for d in (out, out / "data", out / "rejects"):
        for tmp in d.glob("*.tmp") if d.is_dir() else ():
            tmp.unlink(missing_ok=True)
    good: dict[int, dict[str, Any]] = {}
    for name, e in sorted(manifest["shards"].items()):
        ok = _matches(out / e["file"], e["sha256"])
        if e.get("rejects_file"):
            ok = ok and _matches(out / e["rejects_file"], e["rejects_sha256"])
        if ok:
            good[e["index"]] = e
        else:
            log.warning("shard %s is missing or fails its checksum: redoing it", name)
    if len(good) < len(manifest["shards"]):
        manifest["complete"] = False
    manifest["shards"] = {shard_name(i): e for i, e in good.items()}
    return good


def _matches(path: Path, sha: str | None) -> bool:
    return path.is_file() and sha256_file(path) == sha


def plan_tasks(
    spec: BuildSpec, fmt: str, finished: set[int], plan: dict[str, int]
) -> Iterator[ShardTask]:
    """Stream the input once, yielding a task for each unfinished shard; `plan` counts rows and
    shards as they are read (finished shards are read past without keeping their rows)."""
    rows: list[Record | Reject] = []
    count = index = 0
    size = spec.shard_size
    for item in read_records(spec.input, spec.columns, fmt, split=spec.split):
        count += 1
        plan["rows"] += 1
        if index not in finished:
            rows.append(item)
        if count == size:
            if index not in finished:
                yield ShardTask(index, index * size, rows, str(spec.output), spec.config.batch_size)
            rows, count, index = [], 0, index + 1
            plan["shards"] = index
    if count:
        plan["shards"] = index + 1
        if index not in finished:
            yield ShardTask(index, index * size, rows, str(spec.output), spec.config.batch_size)
    if plan["rows"] == 0:
        raise InputError(f"{spec.input}: no data rows")


def _entry(res: ShardResult) -> dict[str, Any]:
    e = asdict(res)
    for k in ("versions", "load_seconds"):
        e.pop(k)
    return e


def _check_versions(manifest: dict[str, Any], versions: dict[str, Any], out: Path) -> None:
    if manifest["versions"] is None:
        manifest["versions"] = versions
    elif manifest["versions"] != versions:
        raise KdaugError(
            f"{out} was built with {manifest['versions']} but this run loads {versions}: "
            "pass --overwrite to rebuild it"
        )


def check_accounting(manifest: dict[str, Any], rows_read: int, source: str) -> None:
    """rows in = records + rows rejected, per shard and overall, and every shard recorded."""
    shards = manifest["shards"]
    missing = [shard_name(i) for i in range(manifest["num_shards"]) if shard_name(i) not in shards]
    if missing:
        raise KdaugError(f"shards {missing[:5]} were not recorded; re-run to finish them")
    for name, e in shards.items():
        if e["rows_in"] != e["records"] + e["rows_rejected"]:
            raise KdaugError(f"row accounting failed in {name}: {e}")
    total = sum(e["rows_in"] for e in shards.values())
    if total != rows_read:
        raise KdaugError(f"row accounting failed: read {rows_read} rows of {source}, {total} out")


def write_stats(
    out: Path, manifest: dict[str, Any], seconds: float, new_rows: int, load_s: float
) -> dict[str, Any]:
    """Aggregate the manifest's shard entries into stats.json (counts, and this run's timings)."""
    shards = manifest["shards"].values()
    c: Counter[str] = Counter()
    for e in shards:
        c.update(e["stats"])
    stats = {
        "shards": len(manifest["shards"]),
        "rows_in": sum(e["rows_in"] for e in shards),
        "records": sum(e["records"] for e in shards),
        "rows_rejected": sum(e["rows_rejected"] for e in shards),
        "variants_out": sum(e["variants"] for e in shards),
        "replacements": {s: c[f"replacements_{s}"] for s in ("mlm", "vectors", "wordnet")},
        "words": {s: c[f"words_{s}"] for s in ("mlm", "vectors", "wordnet", "none")},
        "words_without_candidates": c["words_without_candidates"],
        "candidates_pos_rejected": c["candidates_pos_rejected"],
        "label_fallbacks": c["label_fallbacks"],
        "seconds_shards": round(sum(e["seconds"] for e in shards), 2),
        "run": {
            "seconds_total": round(seconds, 2),
            "seconds_load": round(load_s, 2),
            "rows": new_rows,
            "rows_per_s": round(new_rows / max(seconds, 1e-9), 2),
        },
    }
    write_json_atomic(out / "stats.json", stats)
    return stats


def summary(s: dict[str, Any], out: Path, resumed: int, new: int) -> None:
    reps = ", ".join(f"{k} {v}" for k, v in s["replacements"].items())
    r = s["run"]
    print(
        f"kdaug augment: {s['rows_in']} rows in = {s['records']} records + "
        f"{s['rows_rejected']} rejected; {s['variants_out']} variants out in {s['shards']} shards "
        f"({new} built, {resumed} already done); replacements: {reps}; "
        f"{r['seconds_total']} s ({r['rows_per_s']} rows/s) -> {out}"
    )
