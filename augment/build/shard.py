"""One shard: its task (rows and where to write), the worker's Augmenter, and running it into a
Parquet file (and a rejects file) written atomically by ShardWriter, then its completion record."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from augment.config import AugmentConfig
from augment.io.layout import ShardLayout
from augment.io.writers import ShardWriter, write_rejects
from augment.records import Record, Reject
from kdaug.files import fsync_dir, sha256_file, temp_path
from kdaug.manifest import ShardEntry, shard_name, write_record

Progress = Callable[[int], Any]


@dataclass
class ShardTask:
    """One input shard: its rows (records and rejects, in input order) and where to write."""

    index: int
    first_row: int
    rows: list[Record | Reject]
    output: str
    batch_size: int
    layout: ShardLayout | None = None  # the build's shard columns (None: VARIANT_SCHEMA)


@dataclass
class ShardResult(ShardEntry):
    """What a worker reports once a shard's files are durable: the shard's manifest entry (and
    completion record), and the seconds the worker took to load its models before it."""

    load_seconds: float = 0.0

    def entry(self) -> ShardEntry:
        """Its entry in the manifest (and completion record)."""
        return ShardEntry(**{f.name: getattr(self, f.name) for f in fields(ShardEntry)})


def load_augmenter(config: dict[str, Any], device: str, threads: int | None):
    """An Augmenter for one worker, and the seconds it took to load."""
    t0 = time.perf_counter()
    if threads and not device.startswith("cuda"):
        import torch

        torch.set_num_threads(threads)
    from augment.augmenter import Augmenter

    aug = Augmenter(AugmentConfig(**{**config, "device": device}))
    return aug, time.perf_counter() - t0


def run_shard(aug, task: ShardTask, report: Progress | None = None) -> ShardResult:
    """Augment one shard and write its files durably (worker side): the Parquet file (and its
    rejects) fsynced under temporary names, then its completion record, then the files renamed
    to their final names. A shard file under its final name so always has its record (which
    proves it is kdaug's), and a shard whose record exists is never redone."""
    t0 = time.perf_counter()
    out, name = Path(task.output), shard_name(task.index)
    before = copy.deepcopy(aug.stats)
    records = [r for r in task.rows if isinstance(r, Record)]
    rejects = [r for r in task.rows if isinstance(r, Reject)]
    staged: list[tuple[Path, Path]] = []  # (temporary, final)
    rejects_file = rejects_sha = None
    try:
        if rejects:
            rejects_file = f"rejects/{name}.jsonl"
            write_rejects(out / rejects_file, rejects, publish_file=False)
            staged.append((temp_path(out / rejects_file), out / rejects_file))
            rejects_sha = sha256_file(staged[-1][0])
        final = out / "data" / f"{name}.parquet"
        writer = ShardWriter(final, layout=task.layout)
        variants = 0
        try:
            for i in range(0, len(records), task.batch_size):
                batch = records[i : i + task.batch_size]
                # one write per record: row groups do not follow batches
                for rec, vs in zip(batch, aug.augment(batch), strict=True):
                    writer.write(vs, rec.passthrough)
                    variants += len(vs)
                if report:
                    report(len(batch))
        except BaseException:
            writer.abort()
            raise
        staged.append((writer.close(publish_file=False), final))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    if report and rejects:
        report(len(rejects))
    result = ShardResult(
        index=task.index,
        first_row=task.first_row,
        rows_in=len(task.rows),
        records=len(records),
        rows_rejected=len(rejects),
        variants=variants,
        file=f"data/{name}.parquet",
        sha256=sha256_file(staged[-1][0]),
        rejects_file=rejects_file,
        rejects_sha256=rejects_sha,
        seconds=round(time.perf_counter() - t0, 3),
        stats=(aug.stats - before).to_entry(),
        versions=aug.versions(),
    )
    write_record(out, result.entry())
    publish_staged(staged)
    return result


def publish_staged(staged: list[tuple[Path, Path]]) -> None:
    """Rename fsynced temporary files to their final names, then make the renames durable."""
    for tmp, final in staged:
        os.replace(tmp, final)
    for folder in {final.parent for _, final in staged}:
        fsync_dir(folder)
