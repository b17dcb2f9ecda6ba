"""The teacher's logits that `kdaug teacher-logits` cached beside a build's shards, found with the
fingerprint distillation uses (the teacher's files and the max length), for `kdaug export
--labels teacher`; and the teacher's label names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kdaug.errors import KdaugError


def _load_npy(path: Path):
    import numpy as np

    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise KdaugError(
            f"cannot read the cached teacher logits {path} ({exc}): run `kdaug teacher-logits` again"
        ) from None


def teacher_names(teacher: str | Path) -> tuple[str, ...]:
    """The teacher's label names (config.json id2label), () when absent or generic (LABEL_0)."""
    try:
        cfg = json.loads((Path(teacher) / "config.json").read_text(encoding="utf-8"))
        id2label = {int(k): str(v) for k, v in (cfg.get("id2label") or {}).items()}
    except (OSError, ValueError, AttributeError):
        return ()
    names = tuple(id2label[i] for i in range(len(id2label)) if i in id2label)
    if len(names) != len(id2label) or all(n == f"LABEL_{i}" for i, n in enumerate(names)):
        return ()
    return names


def find_logits(
    out: Path, shards: dict[str, dict[str, Any]], teacher: str, max_length: int, hint: str
) -> tuple[Path, list[Any]]:
    """The cache directory and one memory-mapped [rows, labels] array per shard, in the order of
    `shards` (shard file name -> its verified rows and sha256), when the cache of this teacher
    (every file of it) was computed from exactly these shards; else a one-line KdaugError: no
    cache, or a stale one (the shards or the teacher changed since `kdaug teacher-logits`)."""
    from distill.logits_cache import CACHE_DIR, check_cache, teacher_fingerprint
    from distill.pipeline import teacher_folder

    teacher_dir = teacher_folder(teacher)
    root = out / CACHE_DIR
    fp = teacher_fingerprint(teacher_dir, max_length)
    check = check_cache(root, fp, shards, teacher_dir, max_length)
    rerun = f"kdaug teacher-logits {out} --teacher {teacher} {hint}"
    if check.stale:
        raise KdaugError(
            f"the cached logits of teacher {teacher} in {root} are stale ({check.problem}): "
            f"re-run `{rerun}`"
        )
    if check.problem is not None:
        others = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        note = f" ({root} holds {len(others)} for other teachers or lengths)" if others else ""
        raise KdaugError(
            f"no cached logits of teacher {teacher} at max length {max_length} for {out}{note}: "
            f"run `{rerun}` first"
        )
    directory = check.directory
    arrays = [_load_npy(directory / f"{Path(name).stem}.npy") for name in shards]
    for (name, entry), arr in zip(shards.items(), arrays, strict=True):
        if arr.ndim != 2 or arr.shape[0] != entry["rows"]:
            raise KdaugError(
                f"the cached teacher logits of {name} in {directory} have shape {arr.shape}, "
                f"not ({entry['rows']}, labels): run `kdaug teacher-logits` again"
            )
    return directory, arrays
