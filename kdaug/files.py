"""Files that must survive a crash: written under a temporary name next to the target, fsynced,
renamed onto it, and the directory fsynced. A reader sees the old file or the complete new one,
never a mix; a crash leaves at most a temporary file that `is_temp_name` recognises.

Every durable file of kdaug (shards, manifests, checkpoints, adaptation records, benchmark step
records, caches) is written through here, and so is every completion marker: a JSON record that
some work is done under given settings (see `write_marker`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (files created, renamed or removed in it) durable."""
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


def fsync_file(path: Path) -> None:
    """Make the contents of file `path` durable."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def publish(tmp: Path, path: Path) -> None:
    """fsync `tmp`, rename it to `path` and fsync the directory: `path` is then complete."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: str | Path, obj: Any, *, sort_keys: bool = True, **dumps: Any) -> None:
    """Replace `path` by the JSON of `obj` (indented, keys sorted unless told otherwise); readers
    see the old file or the new, never a mix."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=sort_keys, **dumps) + "\n")


CHUNK = 1 << 20  # bytes read at a time when a file is hashed


class Digest(Protocol):
    """A hashlib object (what `hash_file` feeds)."""

    def update(self, data: bytes, /) -> None: ...


D = TypeVar("D", bound=Digest)


def file_chunks(f: BinaryIO) -> Iterator[bytes]:
    """The rest of the open binary file `f`, CHUNK bytes at a time: a file of any size read in
    constant memory."""
    while chunk := f.read(CHUNK):
        yield chunk


def hash_file(digest: D, f: BinaryIO) -> D:
    """`digest` fed the rest of the open binary file `f` (streamed), for hashes over several
    files or over names and bytes; returned."""
    for chunk in file_chunks(f):
        digest.update(chunk)
    return digest


def sha256_file(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes, streamed."""
    with open(path, "rb") as f:
        return hash_file(hashlib.sha256(), f).hexdigest()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` by `data` atomically and durably."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace `path` by `text` (UTF-8) atomically and durably."""
    write_bytes_atomic(path, text.encode("utf-8"))


# A temporary name is unique per process only: threads of one process writing the same file take
# turns, so that one never truncates or renames another's half-written temporary file.
_writing: dict[Path, threading.Lock] = {}
_writing_guard = threading.Lock()


def _writer_lock(tmp: Path) -> threading.Lock:
    """The lock of this process's writers of temporary path `tmp`."""
    with _writing_guard:
        return _writing.setdefault(tmp, threading.Lock())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path` for a library that writes files itself (`torch.save`,
    `save_pretrained` of one file, pyarrow): published onto `path` when the block ends, removed
    if it raises, so `path` is the old file or the complete new one."""
    path = Path(path)
    tmp = temp_path(path)
    with _writer_lock(tmp):
        try:
            yield tmp
            publish(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A temporary folder next to `path` for a writer of several files (`save_pretrained` of a
    model and its tokenizer): when the block ends, its files are fsynced and it replaces `path`
    (the old folder is renamed aside under a temporary name, then removed), so `path` never holds
    a mix of two saves. If the block raises, the temporary folder is removed and `path` is left
    as it was. A crash between the two renames leaves `path` absent and the previous folder
    beside it under a temporary name (`.NAME.old.kdaug-PID.tmp`)."""
    import shutil

    path = Path(path)
    tmp, old = temp_path(path), temp_path(path.with_name(f"{path.name}.old"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            yield tmp
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as handle:
                        os.fsync(handle.fileno())
            fsync_dir(tmp)
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)


# Completion markers ---------------------------------------------------------------------------
def write_marker(
    path: str | Path,
    settings: Any,
    record: dict[str, Any] | None = None,
    *,
    key: str = "settings",
    **dumps: Any,
) -> None:
    """Mark some work done under `settings` (JSON values, not None): `path` becomes the JSON of
    `record` with `settings` under `key` (keys in `record`'s order; `dumps` as for `json.dumps`),
    published atomically. Write it only once the work's own files are published."""
    write_json_atomic(path, {**(record or {}), key: settings}, sort_keys=False, **dumps)


def read_marker(path: str | Path, settings: Any, *, key: str = "settings") -> dict[str, Any] | None:
    """The record of the marker at `path` if it was made under `settings`; None when there is
    none, or it was made under other settings (compared as JSON: a tuple equals a list)."""
    record = _read_record(path)
    if record is None or key not in record:
        return None
    return record if record[key] == json.loads(json.dumps(settings)) else None


def marker_settings(path: str | Path, *, key: str = "settings") -> Any:
    """The settings the marker at `path` was made under (to say what changed), None if none."""
    record = _read_record(path)
    return None if record is None else record.get(key)


def _read_record(path: str | Path) -> dict[str, Any] | None:
    """The JSON object at `path`, or None: a marker is published whole, so a file that is not
    one (missing, unreadable, not a JSON object) is no marker."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None
