"""Teacher logits stored beside the shards, so that the prediction stage (and `kdaug export
--labels teacher`) can skip the teacher's forward pass.

Layout: SHARDS/teacher_logits/<fingerprint>/<shard stem>.npy (float32 [rows, labels]) and
meta.json, the cache's completion marker: removed before the arrays are written and written after
them. The fingerprint is the teacher's (every file of it, weights included, and the max length,
see distill.fingerprint); meta.json records the content the logits were computed from: each
file's rows and sha256. A cache whose teacher or content differs is stale: distillation computes
the logits again and `kdaug export` refuses it; it is never used."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distill.data import BatchStream, ExampleSource
from distill.fingerprint import file_sha256, teacher_fingerprint
from kdaug.errors import KdaugError
from kdaug.files import atomic_path, temp_path, write_marker

__all__ = [  # teacher_fingerprint is also importable from here, its first home
    "CACHE_DIR",
    "META",
    "CacheCheck",
    "LogitsCache",
    "cache_root",
    "check_cache",
    "find_cache",
    "source_content",
    "teacher_fingerprint",
    "writable_cache_dir",
    "write_cache",
]

log = logging.getLogger(__name__)
CACHE_DIR = "teacher_logits"
META = "meta.json"


def cache_root(train_path: str | Path) -> Path:
    p = Path(train_path)
    return (p if p.is_dir() else p.parent) / CACHE_DIR


def source_content(source: ExampleSource) -> dict[str, dict[str, Any]]:
    """What a cache of `source` is keyed on: each file's name -> its rows and sha256."""
    return {f.name: {"rows": source.count_rows(f), "sha256": file_sha256(f)} for f in source.files}


def _meta(directory: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
        return meta if isinstance(meta, dict) else None
    return None


@dataclass(frozen=True)
class CacheCheck:
    """Whether the cache of a teacher (`fingerprint`) under `root` holds logits of `content`:
    `problem` is None when it does; `stale` when a cache of that teacher exists but was computed
    from other content, or from other files of the same teacher folder."""

    directory: Path
    problem: str | None
    stale: bool = False


def check_cache(
    root: Path,
    fingerprint: str,
    content: dict[str, dict[str, Any]],
    teacher_dir: str | Path = "",
    max_length: int | None = None,
) -> CacheCheck:
    """The one check of a logits cache, for every reader (distill and export): the cache of the
    teacher `fingerprint` under `root`, and whether it holds logits of `content` (see
    source_content). `teacher_dir` and `max_length` name a cache of the same teacher folder whose
    files have changed since (stale)."""
    directory = root / fingerprint
    meta = _meta(directory)
    if meta is None or meta.get("fingerprint") != fingerprint:
        same = {"teacher": str(Path(teacher_dir).resolve()), "max_length": max_length}
        others = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        metas = [_meta(p) or {} for p in others] if teacher_dir else []
        if any({k: m.get(k) for k in same} == same for m in metas):
            return CacheCheck(directory, f"teacher {teacher_dir} changed since then", True)
        return CacheCheck(directory, f"no cached logits in {root}")
    cached = meta.get("files")
    if cached == content:
        return CacheCheck(directory, None)
    cached = cached if isinstance(cached, dict) else {}
    for name, want in content.items():
        have = cached.get(name)
        if not isinstance(have, dict) or "sha256" not in have:
            return CacheCheck(
                directory, f"{name} is not among the files they were computed from", True
            )
        if have != want:
            return CacheCheck(directory, f"{name} changed since then", True)
    extra = sorted(set(cached) - set(content))
    return CacheCheck(directory, f"they cover files that are gone ({', '.join(extra)})", True)


class LogitsCache:
    """Memory-mapped cached logits of a source's files, looked up by (file, row)."""

    def __init__(self, directory: Path, source: ExampleSource) -> None:
        self.directory = directory
        self.arrays = [np.load(directory / f"{f.stem}.npy", mmap_mode="r") for f in source.files]

    def lookup(self, file_index: int, row: int) -> np.ndarray:
        return np.asarray(self.arrays[file_index][row], dtype=np.float32)


def find_cache(source: ExampleSource, fingerprint: str) -> LogitsCache | None:
    """The cache of this teacher for these files' current content, or None (absent or stale)."""
    check = check_cache(cache_root(source.path), fingerprint, source_content(source))
    if check.problem is not None:
        if check.stale:
            log.info(
                "teacher logits in %s are stale (%s): not used", check.directory, check.problem
            )
        return None
    return LogitsCache(check.directory, source)


def writable_cache_dir(source: ExampleSource, fingerprint: str) -> Path:
    """The cache directory of this teacher beside `source`, created and checked writable (a
    file is created and removed there) before any teacher runs; a one-line KdaugError if not."""
    directory = cache_root(source.path) / fingerprint
    probe = temp_path(directory / "write-check")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("xb"):
            pass
        probe.unlink()
    except OSError as exc:
        raise KdaugError(
            f"cannot write the teacher-logits cache in {directory} ({exc.strerror or exc}): "
            f"make {source.path} writable, or copy it somewhere writable"
        ) from None
    return directory


@torch.no_grad()
def write_cache(
    teacher: nn.Module,
    stream: BatchStream,
    fingerprint: str,
    device: torch.device,
    autocast: Any,
    teacher_dir: str | Path = "",
) -> Path:
    """Run the teacher over every row of `stream` (unshuffled) and store its logits, keyed on
    the content of the files as they were before the run."""
    from kdaug.progress import track

    source = stream.source
    directory = writable_cache_dir(source, fingerprint)
    content = source_content(source)
    n_labels = teacher.config.num_labels
    arrays = [np.zeros((c["rows"], n_labels), dtype=np.float32) for c in content.values()]
    teacher.eval()
    for batch in track(stream.epoch(0), total=len(stream), desc="teacher logits", unit="batch"):
        with autocast():
            logits = teacher(**batch.to(device).inputs()).logits.float().cpu().numpy()
        for (fi, ri), row in zip(batch.rows.tolist(), logits, strict=True):
            arrays[fi][ri] = row
    (directory / META).unlink(missing_ok=True)
    for f, arr in zip(source.files, arrays, strict=True):
        with atomic_path(directory / f"{f.stem}.npy") as tmp, tmp.open("wb") as fh:
            np.save(fh, arr)
    meta = {
        "fingerprint": fingerprint,
        "num_labels": n_labels,
        "max_length": stream.max_length,
        "teacher": str(Path(teacher_dir).resolve()) if teacher_dir else None,
        "files": content,
    }
    write_marker(directory / META, fingerprint, meta, key="fingerprint")
    return directory
