"""What a build is asked to do (BuildSpec), what its output depends on (the fingerprint), and
the plan: the input streamed once and cut into shard tasks of `shard_size` rows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from augment.build.manifest import Manifest, first_few
from augment.build.shard import ShardTask
from augment.config import AugmentConfig
from augment.io.layout import SCHEMA_VERSION, ShardLayout
from augment.io.readers import Columns, passthrough_columns, read_records
from augment.records import Record, Reject
from kdaug import __version__
from kdaug.errors import InputError


class InputChangedError(InputError):
    """The input's files changed while the build read them."""


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
    workers_per_device: int | str | None = None  # processes sharing one device; "auto"
    executor: str = "local"
    address: str | None = None
    overwrite: bool = False
    strict: bool = False


def fingerprint(spec: BuildSpec, fmt: str, info: dict[str, Any]) -> dict[str, Any]:
    """What the shards depend on; a build resumes only output with the same fingerprint."""
    return {
        "input": {k: v for k, v in info.items() if k in ("sha256", "hub_fingerprint")},
        "format": fmt,
        "split": spec.split if fmt == "hf" else None,
        "columns": asdict(spec.columns),
        "shard_size": spec.shard_size,
        "config": spec.config.fingerprint_dict(),
        "kdaug": __version__,
        "shard_schema": SCHEMA_VERSION,
    }


def shard_layout(spec: BuildSpec, fmt: str, manifest: Manifest) -> ShardLayout:
    """The shard columns of this build, recorded in the manifest: a function of what the
    fingerprint binds (task, column mapping, the input's columns), so a resumed build reuses it
    rather than scanning a JSON lines input for its keys again."""
    if manifest.shard_layout is not None:
        return ShardLayout.from_dict(manifest.shard_layout)
    cols = spec.columns
    passthrough = passthrough_columns(spec.input, fmt, cols, spec.split)
    layout = ShardLayout.for_build(
        cols.task, cols.text_b is not None, cols.label is not None, passthrough
    )
    manifest.shard_layout = layout.to_dict()
    return layout


def input_state(path: str | Path) -> dict[str, tuple[int, ...]] | None:
    """Size, mtime, ctime and inode of the input's files (each file of a saved dataset
    directory), to tell whether the input changed while it was read; None for a hub dataset."""
    p = Path(path)
    if not p.exists():
        return None
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    state = {}
    for f in files:
        try:
            st = f.stat()
        except FileNotFoundError:  # removed as we looked: the check after reading tells
            continue
        key = str(f.relative_to(p)) if p.is_dir() else f.name
        state[key] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    return state


def check_input_unchanged(path: str | Path, before: dict[str, tuple[int, ...]] | None) -> None:
    """Fail when the input's files differ from `before` (taken before it was hashed): its rows
    would not match the fingerprint the manifest records."""
    if before is None:
        return
    try:
        after = input_state(path) or {}
    except OSError:
        after = {}
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        raise InputChangedError(
            f"{path} changed while it was read ({first_few(changed)}): the rows read no longer "
            "match the fingerprint taken before, so the build stops and keeps none of this run's "
            "shards; run it again once the input no longer changes"
        )


def plan_tasks(
    spec: BuildSpec,
    fmt: str,
    finished: set[int],
    plan: dict[str, int],
    state: dict[str, tuple[int, ...]] | None = None,
    layout: ShardLayout | None = None,
) -> Iterator[ShardTask]:
    """Stream the input once, yielding a task for each unfinished shard; `plan` counts rows and
    shards as they are read (finished shards are read past without keeping their rows). Once
    read, the input must still match `state` (see `check_input_unchanged`). Records carry the
    pass-through columns of `layout`, and tasks the layout their shards are written in."""
    rows: list[Record | Reject] = []
    count = index = 0
    size = spec.shard_size
    output = os.path.abspath(spec.output)  # a worker's working directory may be another one
    extra = layout.passthrough if layout else ()
    records = read_records(spec.input, spec.columns, fmt, split=spec.split, passthrough=extra)
    for item in records:
        count += 1
        plan["rows"] += 1
        if index not in finished:
            rows.append(item)
        if count == size:
            if index not in finished:
                yield ShardTask(index, index * size, rows, output, spec.config.batch_size, layout)
            rows, count, index = [], 0, index + 1
            plan["shards"] = index
    if count:
        plan["shards"] = index + 1
        if index not in finished:
            yield ShardTask(index, index * size, rows, output, spec.config.batch_size, layout)
    check_input_unchanged(spec.input, state)
    if plan["rows"] == 0:
        raise InputError(f"{spec.input}: no data rows")
