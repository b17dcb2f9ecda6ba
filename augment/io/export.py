"""A build's shards as one file: the GLUE TSV the TinyBERT scripts read, or every column as TSV,
JSON lines or Parquet, optionally relabelled by a teacher (`kdaug export`).

Every shard is checked against the manifest's sha256 and row count before anything is written;
the file is never written inside the build directory nor over the build's input, and it is
written atomically (a SIGTERM while writing removes the temporary file). Shards of every layout
version read: string labels (older builds and builds without a task) and ClassLabel ids or float
scores.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from augment.io.agreement import Agreement
from augment.io.layout import LabelCodec
from kdaug.errors import KdaugError, UsageError, one_line
from kdaug.manifest import REBUILD, Manifest, VerifiedShard, identity, load_build, verified_shards

# The format an output's suffix implies (any other suffix: tsv).
FORMATS = {".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class ExportOptions:
    """What to write. None: chosen from the output's name and the build.

    `format`: tsv, jsonl or parquet; `layout`: glue (the task's GLUE TSV) or generic (every
    column); `task`: the GLUE layout to use ("none": generic); `labels`: inherited (each
    variant's record's label) or teacher (the argmax, or the score, of `teacher`'s cached
    logits); `teacher_logits`: add those logits as a column; `max_length`: the one the logits
    were cached with (default 64 for single texts, 128 for pairs)."""

    output: str
    format: str | None = None
    layout: str | None = None
    task: str | None = None
    labels: str = "inherited"
    teacher: str | None = None
    max_length: int | None = None
    teacher_logits: bool = False


@dataclass(frozen=True)
class TeacherCache:
    """Where a teacher's cached logits are found (distill.teacher_labels, passed in by the
    caller: augment does not import distill). `names(teacher)`: its label names;
    `find(out, shards, teacher, max_length, hint)`: its cache directory and one [rows, labels]
    array per shard of `shards` (file name -> verified rows and sha256)."""

    names: Callable[[str], tuple[str, ...]]
    find: Callable[[Path, dict[str, dict[str, Any]], str, int, str], tuple[Path, list[Any]]]


@dataclass(frozen=True)
class ExportResult:
    """What was written: rows, the layout, and where the labels came from."""

    rows: int
    output: str
    layout: str
    task: str | None
    format: str
    changed_rows: int
    teacher: str | None = None
    agreement: str | None = None  # the teacher's agreement with the inherited labels

    def summary(self) -> str:
        """The line `kdaug export` prints."""
        what = (
            f"GLUE {self.task} layout"
            if self.layout == "glue"
            else f"generic layout, {self.format}"
        )
        labels = ""
        if self.agreement is not None:
            labels = f"; labels from teacher {self.teacher}: {self.agreement}"
        elif self.teacher is not None:
            labels = f"; teacher_logits from {self.teacher}"
        changed = ""
        if self.format == "tsv":
            changed = (
                f"; {self.changed_rows} rows had tabs or line breaks inside a field, written as "
                "spaces"
            )
        return f"kdaug export: {self.rows} rows -> {self.output} ({what}){labels}{changed}"


def export_build(
    outdir: str | Path, options: ExportOptions, teachers: TeacherCache | None = None
) -> ExportResult:
    """Write the shards of the finished build `outdir` as `options.output`; a one-line
    KdaugError (UsageError for options that do not fit the build) when it cannot."""
    out = Path(outdir)
    manifest = load_build(out)
    target = export_target(options.output, out, manifest)
    fmt = options.format or FORMATS.get(Path(options.output).suffix.lower(), "tsv")
    layout, task = _layout(options, manifest, fmt)
    shards = verified_shards(out, manifest)  # a finished build, every shard as recorded
    schema = _schema(shards, out)
    codec = LabelCodec.for_shards(schema, manifest.task) if schema else LabelCodec("none")
    teacher, codec = _teacher(options, teachers, out, manifest, shards, codec)
    expected = sum(s.rows for s in shards)
    with _terminate_as_exit():
        try:
            with _writer(target, layout, task, fmt, schema, teacher, codec, manifest.pair) as w:
                for k, shard in enumerate(shards):
                    first = 0
                    for rows in _shard_rows(shard, out):
                        if teacher:
                            _relabel(rows, teacher.arrays[k], first, teacher, codec)
                        first += len(rows)
                        w.write(rows)
                if w.rows != expected:
                    raise KdaugError(
                        f"{out}: read {w.rows} rows from the shards, manifest.json records "
                        f"{expected}; {REBUILD}"
                    )
                w.close()
        except OSError as exc:
            raise KdaugError(f"cannot write {options.output}: {exc.strerror or exc}") from None
    return ExportResult(
        w.rows,
        options.output,
        layout,
        task,
        fmt,
        w.changed_rows,
        options.teacher if teacher else None,
        teacher.agreement.summary() if teacher and teacher.relabel else None,
    )


def export_target(output: str, outdir: str | Path, manifest: Manifest) -> Path:
    """The file to write, refused (one line) if it is a directory or not a regular file, lies
    inside the build directory, or is the build's input."""
    target = Path(output)
    if target.is_dir():
        raise KdaugError(
            f"-o {output} is a directory: give the file to write, e.g. {target / 'train_aug.tsv'}"
        )
    if target.exists() and not target.is_file():
        raise KdaugError(f"-o {output} exists and is not a regular file")
    resolved = target.resolve()
    if resolved.is_relative_to(Path(outdir).resolve()):
        raise KdaugError(
            f"-o {output} is inside the build directory {outdir}: export writes outside it "
            "(the build holds only what `kdaug augment` wrote)"
        )
    source = (manifest.input or {}).get("path")
    if isinstance(source, str) and source:
        same = Path(source).resolve() == resolved
        with contextlib.suppress(OSError):
            same = same or (target.exists() and os.path.samefile(source, target))
        if same:
            raise KdaugError(f"-o {output} is the build's input file: choose another name")
    return target


def _layout(options: ExportOptions, manifest: Manifest, fmt: str) -> tuple[str, str | None]:
    """("glue", task) or ("generic", None), as asked and as the build allows."""
    if options.task and options.task.lower() == "none":
        if options.layout == "glue":
            raise UsageError("--layout glue needs a task: drop --task none, or pass --task T")
        return "generic", None
    task = options.task or (manifest.input or {}).get("task")
    layout = options.layout or ("glue" if task and fmt == "tsv" else "generic")
    if layout == "generic":
        return "generic", None
    if fmt != "tsv":
        raise UsageError(f"the GLUE layout is TSV, not {fmt}: use --layout generic for {fmt}")
    if not task:
        raise UsageError(
            "--layout glue needs a task: this build has none, so pass --task T (sst2, mrpc, ...), "
            "or use --layout generic"
        )
    from augment.io.writers import glue_layout

    try:
        glue_layout(task, manifest.pair)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return "glue", task


def _schema(shards: list[VerifiedShard], out: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(shards[0].path) if shards else None
    except (pa.ArrowException, OSError) as exc:
        raise KdaugError(
            f"{out}: cannot read shard {shards[0].name} ({one_line(exc, 200)})"
        ) from None


def _shard_rows(shard: VerifiedShard, out: Path) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows of a verified shard, refusing a file that changed since it was verified
    (the open file is checked, so a rename over it cannot slip in between)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open(shard.path, "rb") as f:
            if identity(os.fstat(f.fileno())) != shard.identity:
                raise KdaugError(f"{out}: shard {shard.name} changed during the export; try again")
            for batch in pq.ParquetFile(f).iter_batches(batch_size=8192):
                yield batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise KdaugError(
            f"{out}: cannot read shard {shard.name} ({one_line(exc, 200)}); {REBUILD}"
        ) from None


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit while exporting, so the temporary file is removed on a kill."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the teacher's labels -------------------------------------------------------------------------


@dataclass
class _Teacher:
    """The teacher's cached logits of every shard, and what they are used for."""

    arrays: list[Any]
    relabel: bool
    with_logits: bool
    agreement: Agreement


def _teacher(
    options: ExportOptions,
    teachers: TeacherCache | None,
    out: Path,
    manifest: Manifest,
    shards: list[VerifiedShard],
    codec: LabelCodec,
) -> tuple[_Teacher | None, LabelCodec]:
    relabel = options.labels == "teacher"
    if not relabel and not options.teacher_logits:
        if options.teacher:
            raise UsageError("--teacher is for --labels teacher or --teacher-logits")
        return None, codec
    flag = "--labels teacher" if relabel else "--teacher-logits"
    if not options.teacher:
        raise UsageError(
            f"{flag} needs --teacher DIR (the teacher that `kdaug teacher-logits` ran)"
        )
    if teachers is None:
        raise UsageError(f"{flag} needs the teacher's cached logits, and no cache was given")
    if codec.kind == "none" and relabel and not codec.task:
        codec = replace(codec, kind="string")
    codec = replace(codec, teacher_names=teachers.names(options.teacher))
    max_length = options.max_length or (128 if manifest.pair else 64)
    task = manifest.task
    hint = f"--task {task}" if task else "--task custom ..."
    if options.max_length:
        hint += f" --max-length {options.max_length}"
    # what the cache must have been computed from: the shards as verified against the manifest
    content = {s.path.name: {"rows": s.rows, "sha256": s.sha256} for s in shards}
    directory, arrays = teachers.find(out, content, options.teacher, max_length, hint)
    width = arrays[0].shape[1] if arrays else 0
    wanted = 1 if codec.regression else len(codec.names) or width
    if arrays and width != wanted:
        raise KdaugError(
            f"the teacher's cached logits in {directory} have {width} labels, but this build's "
            f"task has {wanted}: use a teacher fine-tuned on the build's task"
        )
    return _Teacher(arrays, relabel, options.teacher_logits, Agreement(codec)), codec


def _relabel(rows: list[dict[str, Any]], logits, first: int, t: _Teacher, codec) -> None:
    """Put the teacher's label (and logits) on shard rows `first`.. of one shard."""
    for i, row in enumerate(rows):
        values = logits[first + i]
        if t.relabel:
            inherited = row.get("label")
            row["label"] = codec.from_logits(values)
            row["inherited_label"] = inherited
            t.agreement.add(inherited, row["label"], row["variant"])
        if t.with_logits:
            row["teacher_logits"] = [float(x) for x in values]


# --- the writers ----------------------------------------------------------------------------------


def _parquet_schema(schema, t: _Teacher | None, codec: LabelCodec):
    """The shards' schema plus the export's extra columns, with their `datasets` features."""
    import json

    import pyarrow as pa

    from kdaug.tables import shard_features

    features = dict(shard_features(schema))
    fields = list(schema)
    if t and t.relabel:
        if "label" not in schema.names:
            fields.append(pa.field("label", pa.string()))
            features["label"] = {"dtype": "string", "_type": "Value"}
        label = next(f for f in fields if f.name == "label")
        fields.append(pa.field("inherited_label", label.type, nullable=True))
        if "label" in features:
            features["inherited_label"] = features["label"]
    if t and t.with_logits:
        fields.append(pa.field("teacher_logits", pa.list_(pa.float32())))
        features["teacher_logits"] = [{"dtype": "float32", "_type": "Value"}]
    metadata = {}
    if features:
        features = {f.name: features[f.name] for f in fields if f.name in features}
        metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=metadata or None)


def _writer(
    target: Path,
    layout: str,
    task: str | None,
    fmt: str,
    schema,
    t: _Teacher | None,
    codec: LabelCodec,
    pair: bool,
):
    from augment.io.writers import (
        JsonlExportWriter,
        ParquetExportWriter,
        TsvExportWriter,
        generic_layout,
    )

    if layout == "glue":
        return TsvExportWriter(target, task, pair, label_text=codec.text)
    if fmt == "parquet":
        return ParquetExportWriter(target, _parquet_schema(schema, t, codec))
    passthrough = []
    if "passthrough" in schema.names:
        passthrough = [f.name for f in schema.field("passthrough").type]
    extras = ["inherited_label"] * bool(t and t.relabel) + ["teacher_logits"] * bool(
        t and t.with_logits
    )
    has_label = "label" in schema.names or bool(t and t.relabel)
    columns = generic_layout(pair, has_label, passthrough, extras)
    if fmt == "jsonl":
        return JsonlExportWriter(target, columns)
    return TsvExportWriter(target, None, pair, layout=columns, label_text=codec.text)
