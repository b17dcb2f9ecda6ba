"""What a result was computed from, as hashes: a teacher (every file that decides its outputs)
and training data (each file's sha256). The teacher-logits cache and the training checkpoints
are keyed on them, so that a changed teacher or changed data is never taken for the old one."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kdaug.errors import KdaugError
from kdaug.files import sha256_file

# the files of a saved model that decide its outputs: config and tokenizer (.json, vocab.txt,
# merges.txt, SentencePiece .model) and the weights, one file or sharded (.safetensors, .bin)
MODEL_SUFFIXES = (".json", ".txt", ".model", ".safetensors", ".bin")
_known: dict[tuple[Any, ...], str] = {}


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file; remembered for this process while the file is the same one (same
    inode, size, mtime and ctime), since a run asks for it several times. A file that cannot
    be read is a one-line KdaugError."""
    p = Path(path)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key not in _known:
            _known[key] = sha256_file(p)
    except OSError as exc:
        raise KdaugError(f"cannot read {p} ({exc.strerror or exc})") from None
    return _known[key]


def model_sha256(model_dir: str | Path) -> str:
    """One sha256 over a saved model's files (MODEL_SUFFIXES, at the top of its folder): its
    weights, every shard of them, its config and its tokenizer."""
    root = Path(model_dir)
    h = hashlib.sha256()
    files = sorted(f for f in root.iterdir() if f.suffix in MODEL_SUFFIXES and f.is_file())
    for f in files:
        h.update(f"{f.name}={file_sha256(f)}\n".encode())
    return h.hexdigest()


def teacher_fingerprint(teacher_dir: str | Path, max_length: int) -> str:
    """The key of a teacher's logits: its files (model_sha256) and the max length."""
    h = hashlib.sha256(f"max_length={max_length}\n{model_sha256(teacher_dir)}".encode())
    return h.hexdigest()[:16]


def data_sha256(files: list[Path]) -> str:
    """One sha256 over training files' contents, in order."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}={file_sha256(f)}\n".encode())
    return h.hexdigest()
