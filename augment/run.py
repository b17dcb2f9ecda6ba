"""`kdaug augment` on one process: stream the input, augment in batches, write one shard."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from pathlib import Path

from augment.config import AugmentConfig
from augment.errors import InputError, KdaugError
from augment.records import Record, Reject


def run_augment(args: argparse.Namespace, cfg: AugmentConfig) -> int:
    from tqdm import tqdm

    from augment.augmenter import Augmenter
    from augment.io.readers import columns_for, read_records
    from augment.io.writers import ShardWriter, write_rejects

    out = Path(args.output)
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            raise KdaugError(f"output {out} is not empty: pass --overwrite to replace it")
        shutil.rmtree(out)
    cols = columns_for(
        args.task, args.text_column, args.text_b_column, args.label_column, args.id_column
    )
    source = read_records(args.input, cols, args.format)
    t0 = time.perf_counter()
    aug = Augmenter(cfg)
    load_s = time.perf_counter() - t0

    writer = ShardWriter(out / "data" / "part-00000.parquet")
    rejects: list[Reject] = []
    batch: list[Record] = []
    rows_in = records = variants = 0
    bar = tqdm(desc="augment", unit=" rows", dynamic_ncols=True)

    def flush() -> None:
        nonlocal records, variants
        for vs in aug.augment(batch):
            writer.write(vs)
            variants += len(vs)
        records += len(batch)
        bar.update(len(batch))
        batch.clear()

    try:
        for item in source:
            rows_in += 1
            if isinstance(item, Reject):
                rejects.append(item)
                bar.update(1)
                continue
            batch.append(item)
            if len(batch) >= cfg.batch_size:
                flush()
        if batch:
            flush()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    writer.close()
    write_rejects(out / "rejects" / "part-00000.jsonl", rejects)
    if rows_in != records + len(rejects):
        raise KdaugError(f"row accounting failed: {rows_in} in, {records} + {len(rejects)} out")
    if rows_in == 0:
        raise InputError(f"{args.input}: no data rows")
    seconds = time.perf_counter() - t0
    stats = _stats(aug.stats, rows_in, records, len(rejects), variants, load_s, seconds)
    stats["versions"] = aug.versions()
    stats["config"] = cfg.model_dump()
    (out / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    _summary(stats, out)
    return 0


def _stats(c: Counter, rows_in, records, rejected, variants, load_s, seconds) -> dict:
    return {
        "rows_in": rows_in,
        "records": records,
        "rows_rejected": rejected,
        "variants_out": variants,
        "replacements": {s: c[f"replacements_{s}"] for s in ("mlm", "vectors", "wordnet")},
        "words": {s: c[f"words_{s}"] for s in ("mlm", "vectors", "wordnet", "none")},
        "words_without_candidates": c["words_without_candidates"],
        "candidates_pos_rejected": c["candidates_pos_rejected"],
        "label_fallbacks": c["label_fallbacks"],
        "seconds_load": round(load_s, 2),
        "seconds_total": round(seconds, 2),
        "records_per_s": round(records / max(seconds - load_s, 1e-9), 2),
    }


def _summary(s: dict, out: Path) -> None:
    reps = ", ".join(f"{k} {v}" for k, v in s["replacements"].items())
    print(
        f"kdaug augment: {s['rows_in']} rows in = {s['records']} records + "
        f"{s['rows_rejected']} rejected; {s['variants_out']} variants out; replacements: {reps}; "
        f"{s['seconds_total']} s ({s['records_per_s']} records/s) -> {out}"
    )
