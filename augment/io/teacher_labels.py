"""The teacher's logits that `kdaug teacher-logits` cached beside a build's shards, found with the
fingerprint distillation uses (the teacher's files and the max length), for `kdaug export
--labels teacher`; and the agreement of the teacher's labels with the inherited ones."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.io.layout import LabelCodec
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
    out: Path, shard_rows: dict[str, int], teacher: str, max_length: int, hint: str
) -> tuple[Path, list[Any]]:
    """The cache directory and one memory-mapped [rows, labels] array per shard (in the order
    of `shard_rows`: shard file name -> rows); a one-line KdaugError when no cache matches."""
    from distill.logits_cache import CACHE_DIR, META, teacher_fingerprint
    from distill.pipeline import trained_dir

    if not Path(teacher).is_dir():
        raise KdaugError(f"--teacher {teacher} is not a directory: give the fine-tuned teacher")
    teacher_dir = trained_dir(teacher)
    fp = teacher_fingerprint(teacher_dir, max_length)
    directory = out / CACHE_DIR / fp
    meta = None
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads((directory / META).read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("files") != shard_rows:
        root = out / CACHE_DIR
        others = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        stale = " (a cache for these shards was found but is out of date)" if meta else ""
        note = f" ({root} holds {len(others)} for other teachers or lengths)" if others else ""
        raise KdaugError(
            f"no cached logits of teacher {teacher} at max length {max_length} for {out}{stale}"
            f"{note}: run `kdaug teacher-logits {out} --teacher {teacher} {hint}` first"
        )
    arrays = [_load_npy(directory / f"{Path(name).stem}.npy") for name in shard_rows]
    for (name, rows), arr in zip(shard_rows.items(), arrays, strict=True):
        if arr.ndim != 2 or arr.shape[0] != rows:
            raise KdaugError(
                f"the cached teacher logits of {name} in {directory} have shape {arr.shape}, "
                f"not ({rows}, labels): run `kdaug teacher-logits` again"
            )
    return directory, arrays


@dataclass
class Agreement:
    """How often the teacher's label equals the inherited one (classification), or how far its
    score is from the inherited score (regression), over all labelled rows and over variants."""

    codec: LabelCodec
    counts: dict[str, list[float]] = field(
        default_factory=lambda: {"all": [0, 0.0], "variants": [0, 0.0]}
    )

    def add(self, inherited: Any, teacher: Any, variant: int) -> None:
        if self.codec.regression:
            a, b = self.codec.score(inherited), self.codec.score(teacher)
            hit = None if a is None or b is None else abs(a - b)
        else:
            a, b = self.codec.index(inherited), self.codec.index(teacher)
            hit = None if a is None or b is None else float(a == b)
        if hit is None:
            return
        for key in ("all", "variants") if variant > 0 else ("all",):
            self.counts[key][0] += 1
            self.counts[key][1] += hit

    def rate(self, key: str) -> float | None:
        n, total = self.counts[key]
        return total / n if n else None

    def summary(self) -> str:
        def part(key: str, what: str) -> str:
            rate = self.rate(key)
            if rate is None:
                return f"no labelled {what}"
            n = int(self.counts[key][0])
            return (
                f"{rate:.3f} over {n} {what}"
                if self.codec.regression
                else (f"{100 * rate:.1f}% of {n} {what}")
            )

        parts = f"{part('all', 'rows')}, {part('variants', 'variants')}"
        if self.codec.regression:
            return f"mean absolute difference from the inherited score {parts}"
        return f"teacher agrees with the inherited label on {parts}"
