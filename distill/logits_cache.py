"""Teacher logits stored beside the shards, keyed by a fingerprint of the teacher and the
tokenisation length, so that the prediction stage can skip the teacher's forward pass.

Layout: SHARDS/teacher_logits/<fingerprint>/<shard stem>.npy (float32 [rows, labels]) and
meta.json (files with their row counts), the cache's completion marker: removed before the
arrays are written and written after them. A cache that does not match is ignored, never used."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distill.data import BatchStream, ExampleSource
from kdaug.files import atomic_path, read_marker, write_marker

CACHE_DIR = "teacher_logits"
META = "meta.json"


def teacher_fingerprint(teacher_dir: str | Path, max_length: int) -> str:
    """sha256 of the teacher's config, weights and vocabulary files, and the max length."""
    h = hashlib.sha256(f"max_length={max_length}".encode())
    root = Path(teacher_dir)
    names = ("config.json", "tokenizer.json", "vocab.txt", "model.safetensors", "pytorch_model.bin")
    for name in names:
        f = root / name
        if not f.is_file():
            continue
        h.update(name.encode())
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:16]


def cache_root(train_path: str | Path) -> Path:
    p = Path(train_path)
    return (p if p.is_dir() else p.parent) / CACHE_DIR


class LogitsCache:
    """Memory-mapped cached logits of a source's files, looked up by (file, row)."""

    def __init__(self, directory: Path, source: ExampleSource) -> None:
        self.directory = directory
        self.arrays = [np.load(directory / f"{f.stem}.npy", mmap_mode="r") for f in source.files]

    def lookup(self, file_index: int, row: int) -> np.ndarray:
        return np.asarray(self.arrays[file_index][row], dtype=np.float32)


def find_cache(source: ExampleSource, fingerprint: str) -> LogitsCache | None:
    """The cache for these shards and this teacher, or None when absent or not matching."""
    directory = cache_root(source.path) / fingerprint
    meta = read_marker(directory / META, fingerprint, key="fingerprint")
    if meta is None:
        return None
    want = {f.name: source.count_rows(f) for f in source.files}
    if meta.get("files") != want:
        return None
    return LogitsCache(directory, source)


@torch.no_grad()
def write_cache(
    teacher: nn.Module,
    stream: BatchStream,
    fingerprint: str,
    device: torch.device,
    autocast: Any,
) -> Path:
    """Run the teacher over every row of `stream` (unshuffled) and store its logits."""
    from kdaug.progress import track

    source = stream.source
    counts = [source.count_rows(f) for f in source.files]
    n_labels = teacher.config.num_labels
    arrays = [np.zeros((c, n_labels), dtype=np.float32) for c in counts]
    teacher.eval()
    for batch in track(stream.epoch(0), total=len(stream), desc="teacher logits", unit="batch"):
        with autocast():
            logits = teacher(**batch.to(device).inputs()).logits.float().cpu().numpy()
        for (fi, ri), row in zip(batch.rows.tolist(), logits, strict=True):
            arrays[fi][ri] = row
    directory = cache_root(source.path) / fingerprint
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META).unlink(missing_ok=True)
    for f, arr in zip(source.files, arrays, strict=True):
        with atomic_path(directory / f"{f.stem}.npy") as tmp, tmp.open("wb") as fh:
            np.save(fh, arr)
    meta = {
        "fingerprint": fingerprint,
        "num_labels": n_labels,
        "max_length": stream.max_length,
        "files": {f.name: c for f, c in zip(source.files, counts, strict=True)},
    }
    write_marker(directory / META, fingerprint, meta, key="fingerprint")
    return directory
