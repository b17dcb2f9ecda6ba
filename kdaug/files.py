"""Files that must survive a crash: written under a temporary name next to the target, fsynced,
renamed onto it, and the directory fsynced. A reader sees the old file or the complete new one,
never a mix; a crash leaves at most a temporary file that `is_temp_name` recognises.

Every durable file of kdaug (shards, manifests, checkpoints, adaptation records, benchmark step
records, caches) is written through here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# kdaug's temporary files: `.NAME.kdaug-PID.tmp` next to NAME. The marker is what lets a build
# clean up its own leftovers without touching anyone else's `*.tmp` files.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.kdaug-(?P<pid>\d+)\.tmp$")


def temp_path(path: Path) -> Path:
    """A temporary name next to `path`, unique per process (two writers never share one) and
    marked as kdaug's (hidden, `.kdaug-PID.tmp`), so that only kdaug's leftovers are removed."""
    return path.with_name(f".{path.name}.kdaug-{os.getpid()}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether `name` is one of kdaug's temporary names (see `temp_path`)."""
    return TEMP_NAME.match(name) is not None


def publish(tmp: Path, path: Path) -> None:
    """fsync `tmp`, rename it to `path` and fsync the directory: `path` is then complete."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_json_atomic(path: str | Path, obj: Any, *, sort_keys: bool = True, **dumps: Any) -> None:
    """Replace `path` by the JSON of `obj` (indented, keys sorted unless told otherwise); readers
    see the old file or the new, never a mix."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=sort_keys, **dumps) + "\n")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` by `data` atomically and durably."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path` by `text` (UTF-8) atomically and durably."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path` for a library that writes files itself (`torch.save`,
    `save_pretrained` of one file, pyarrow): published onto `path` when the block ends, removed
    if it raises, so `path` is the old file or the complete new one."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
