"""The ablation's data: the train subset it writes, and the teacher's logits cache read back the
way a distill run reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.ablation.stats import label_agreement, score_correlation
from benchmarks.ablation.steps import AblationError
from benchmarks.paths import shown
from distill.tasks import TaskSpec
from kdaug.files import atomic_path, sha256_file


def write_subset(src: Path, dst: Path, spec: TaskSpec, limit: int) -> dict[str, Any]:
    """The header (if the task's files have one) and the first `limit` rows (0: all) of `src`."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    rows = total = 0
    with (
        src.open(encoding="utf-8-sig", newline="") as f,
        atomic_path(dst) as tmp,
        tmp.open("w", encoding="utf-8") as g,
    ):
        if spec.header is None:
            g.write(f.readline().rstrip("\r\n") + "\n")
        for line in f:
            if not line.strip():
                continue
            total += 1
            if not limit or rows < limit:
                g.write(line.rstrip("\r\n") + "\n")
                rows += 1
    if rows == 0:
        raise AblationError(f"{shown(src)} has no data rows")
    return {"path": shown(dst), "rows": rows, "source_rows": total, "sha256": sha256_file(dst)}


def read_teacher_logits(
    train: Path, spec: TaskSpec, teacher_dir: Path, max_length: int, printed: str
) -> dict[str, Any]:
    """The cache `kdaug teacher-logits` wrote, read back through distill's own modules (the
    lookup a distill run makes): the train set's rows, and how often the teacher's prediction is
    the label each row carries (originals and variants apart, from the shards' `variant`)."""
    from distill.data import ExampleSource
    from distill.logits_cache import find_cache, teacher_fingerprint
    from distill.pipeline import trained_dir

    fingerprint = teacher_fingerprint(trained_dir(str(teacher_dir)), max_length)
    source = ExampleSource(train, spec)
    cache = find_cache(source, fingerprint)
    if cache is None:
        raise AblationError(
            f"kdaug teacher-logits wrote {printed.strip()!r}, but no cache for fingerprint "
            f"{fingerprint} (max length {max_length}) matches {shown(train)}: the distill runs "
            "would run the teacher again; rerun with --redo"
        )
    flags = _original_flags(source)
    labels, predictions, original = [], [], []
    for ex in source:
        if ex.label is None:
            continue
        fi, ri = ex.key
        logits = cache.lookup(fi, ri)
        labels.append(ex.label)
        predictions.append(float(logits[0]) if spec.is_regression else int(logits.argmax()))
        original.append(flags[fi][ri] if flags[fi] is not None else True)
    split = original if any(flags[fi] is not None for fi in range(len(flags))) else None
    measure = score_correlation if spec.is_regression else label_agreement
    return {
        "rows": len(source),
        "fingerprint": fingerprint,
        "teacher_vs_labels": measure(labels, predictions, split),
    }


def _original_flags(source: Any) -> list[list[bool] | None]:
    """Per file, whether each row is an original (variant 0) of kdaug shards; None for files
    without a `variant` column (a GLUE file: every row is an original)."""
    import pyarrow.parquet as pq

    out: list[list[bool] | None] = []
    for f in source.files:
        if f.suffix == ".parquet" and "variant" in pq.ParquetFile(f).schema_arrow.names:
            out.append(
                [v == 0 for v in pq.read_table(f, columns=["variant"])["variant"].to_pylist()]
            )
        else:
            out.append(None)
    return out
