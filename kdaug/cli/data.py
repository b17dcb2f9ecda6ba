"""`kdaug export` (shards -> the GLUE TSV the TinyBERT scripts read, or every column as TSV, JSON
lines or Parquet, optionally relabelled by a teacher) and `kdaug inspect` (summary).

Both read a build through its manifest.json and refuse, in one line, a manifest or shard that is
damaged. Export checks every shard against the manifest's sha256 and row count before it writes
anything, never writes inside the build directory (nor over the build's input), and writes its
file atomically. Shards of every layout version read: string labels (older builds and builds
without a task) and ClassLabel ids or float scores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdaug.errors import KdaugError, UsageError
from kdaug.manifest import (
    REBUILD,
    Manifest,
    VerifiedShard,
    identity,
    load_build,
    verified_shards,
)
from kdaug.terminal import printable

if TYPE_CHECKING:
    from augment.io.layout import LabelCodec

FORMATS = {".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a built output as one file (TinyBERT's train_aug.tsv, or every column)",
        description="Check every shard against manifest.json, then write them in order as one "
        "file (atomically): the GLUE TSV layout of the build's task, or every column (--layout "
        "generic) as TSV, JSON lines or Parquet. OUTPUT must be a file outside OUTDIR.",
    )
    p.add_argument("outdir", help="output directory of `kdaug augment`")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write, e.g. train_aug.tsv (outside OUTDIR; an existing file is replaced)",
    )
    p.add_argument(
        "--format",
        choices=["tsv", "jsonl", "parquet"],
        default=None,
        help="default: from the name of -o (.jsonl, .parquet), else tsv",
    )
    p.add_argument(
        "--layout",
        choices=["glue", "generic"],
        default=None,
        help="glue: the GLUE TSV layout of the task, with the input's ids and extra columns "
        "(default for TSV when the build or --task names a task); generic: every column (id, "
        "variant, texts, label, replacements, the input's other columns)",
    )
    p.add_argument(
        "--task",
        default=None,
        help="GLUE layout of this task (sst2, mnli, ...; default: the build's --task; 'none': "
        "--layout generic)",
    )
    p.add_argument(
        "--labels",
        choices=["inherited", "teacher"],
        default="inherited",
        help="inherited (default): each variant's record's label; teacher: the argmax (the score, "
        "for regression) of the teacher's logits cached by `kdaug teacher-logits` (needs "
        "--teacher); the inherited label is kept as inherited_label in the generic layout",
    )
    p.add_argument("--teacher", help="the fine-tuned teacher whose cached logits to use")
    p.add_argument(
        "--max-length",
        type=int,
        help="the --max-length the logits were cached with (default 64 single texts, 128 pairs)",
    )
    p.add_argument(
        "--teacher-logits",
        action="store_true",
        help="add a teacher_logits column (generic layout; needs --teacher)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("inspect", help="print a built output's summary and sampled variants")
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=5, help="variants to show (default 5)")
    p.add_argument("--seed", type=int, default=0, help="which variants to sample")
    p.set_defaults(func=cmd_inspect)


# --- manifest.json and shards: kdaug.manifest's one loader and one verifier -------------------


def load_manifest(outdir: str | Path) -> Manifest:
    """The manifest of a build, or a one-line KdaugError when it is missing or damaged."""
    return load_build(outdir)


def is_pair(manifest: Manifest) -> bool:
    """Whether a build holds text pairs (it mapped a second text column)."""
    return manifest.pair


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
            f"{out}: cannot read shard {shard.name} ({_first_line(exc)}); {REBUILD}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


# --- export -------------------------------------------------------------------------------------


def export_target(output: str, outdir: str | Path, manifest: Manifest) -> Path:
    """The file `-o` names, refused (one line) if it is a directory or not a regular file, lies
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


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return FORMATS.get(Path(args.output).suffix.lower(), "tsv")


def _layout(args: argparse.Namespace, manifest: Manifest, fmt: str) -> tuple[str, str | None]:
    """("glue", task) or ("generic", None), as asked and as the build allows."""
    if args.task and args.task.lower() == "none":
        if args.layout == "glue":
            raise UsageError("--layout glue needs a task: drop --task none, or pass --task T")
        return "generic", None
    task = args.task or (manifest.input or {}).get("task")
    layout = args.layout or ("glue" if task and fmt == "tsv" else "generic")
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
        glue_layout(task, is_pair(manifest))
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
            f"{out}: cannot read shard {shards[0].name} ({_first_line(exc)})"
        ) from None


@dataclass
class _Teacher:
    """The teacher's cached logits of every shard, and what they are used for."""

    arrays: list[Any]
    relabel: bool
    with_logits: bool
    agreement: Any


def _teacher(args, out, manifest, shards, codec) -> tuple[_Teacher | None, LabelCodec]:
    from augment.io.agreement import Agreement
    from distill.teacher_labels import find_logits, teacher_names

    if args.labels != "teacher" and not args.teacher_logits:
        if args.teacher:
            raise UsageError("--teacher is for --labels teacher or --teacher-logits")
        return None, codec
    flag = "--labels teacher" if args.labels == "teacher" else "--teacher-logits"
    if not args.teacher:
        raise UsageError(
            f"{flag} needs --teacher DIR (the teacher that `kdaug teacher-logits` ran)"
        )
    if codec.kind == "none" and args.labels == "teacher" and not codec.task:
        codec = replace(codec, kind="string")
    codec = replace(codec, teacher_names=teacher_names(args.teacher))
    pair = is_pair(manifest)
    max_length = args.max_length or (128 if pair else 64)
    task = manifest.task
    hint = f"--task {task}" if task else "--task custom ..."
    if args.max_length:
        hint += f" --max-length {args.max_length}"
    # what the cache must have been computed from: the shards as verified against the manifest
    content = {s.path.name: {"rows": s.rows, "sha256": s.sha256} for s in shards}
    directory, arrays = find_logits(out, content, args.teacher, max_length, hint)
    width = arrays[0].shape[1] if arrays else 0
    wanted = 1 if codec.regression else len(codec.names) or width
    if arrays and width != wanted:
        raise KdaugError(
            f"the teacher's cached logits in {directory} have {width} labels, but this build's "
            f"task has {wanted}: use a teacher fine-tuned on the build's task"
        )
    return _Teacher(arrays, args.labels == "teacher", args.teacher_logits, Agreement(codec)), codec


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


def _writer(args, target: Path, layout: str, task: str | None, fmt: str, schema, t, codec, pair):
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


def cmd_export(args: argparse.Namespace) -> int:
    from augment.io.layout import LabelCodec

    out = Path(args.outdir)
    manifest = load_manifest(out)
    target = export_target(args.output, out, manifest)
    fmt = _format(args)
    layout, task = _layout(args, manifest, fmt)
    shards = verified_shards(out, manifest)  # a finished build, every shard as recorded
    schema = _schema(shards, out)
    build_task = manifest.task
    codec = LabelCodec.for_shards(schema, build_task) if schema else LabelCodec("none")
    teacher, codec = _teacher(args, out, manifest, shards, codec)
    pair = is_pair(manifest)
    expected = sum(s.rows for s in shards)
    with _terminate_as_exit():
        try:
            with _writer(args, target, layout, task, fmt, schema, teacher, codec, pair) as writer:
                for k, shard in enumerate(shards):
                    first = 0
                    for rows in _shard_rows(shard, out):
                        if teacher:
                            _relabel(rows, teacher.arrays[k], first, teacher, codec)
                        first += len(rows)
                        writer.write(rows)
                if writer.rows != expected:
                    raise KdaugError(
                        f"{out}: read {writer.rows} rows from the shards, manifest.json records "
                        f"{expected}; {REBUILD}"
                    )
                writer.close()
        except OSError as exc:
            raise KdaugError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    what = f"GLUE {task} layout" if layout == "glue" else f"generic layout, {fmt}"
    labels = ""
    if teacher and teacher.relabel:
        labels = f"; labels from teacher {args.teacher}: {teacher.agreement.summary()}"
    elif teacher:
        labels = f"; teacher_logits from {args.teacher}"
    changed = ""
    if fmt == "tsv":
        changed = (
            f"; {writer.changed_rows} rows had tabs or line breaks inside a field, written as "
            "spaces"
        )
    print(printable(f"kdaug export: {writer.rows} rows -> {args.output} ({what}){labels}{changed}"))
    return 0


# --- inspect ------------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from augment.io.layout import LabelCodec
    from augment.records import Replacement
    from kdaug.cli.augment import highlight

    out = Path(args.outdir)
    manifest = load_manifest(out)
    verified_shards(out, manifest, allow_incomplete=True)  # every finished shard as recorded
    m = manifest.to_dict()
    shards = m["shards"]
    total = lambda key: sum(e[key] for e in shards.values())  # noqa: E731
    inp, cfg = m.get("input") or {}, m["fingerprint"]["config"]
    state = "complete" if m.get("complete") else "incomplete (re-run to resume)"
    shard_size = m["fingerprint"]["shard_size"]
    print(printable(f"{args.outdir}: {state}; {len(shards)} shards of {shard_size} rows"))
    fmt = m["fingerprint"]["format"]
    print(printable(f"  input     {inp.get('path')} ({fmt}), sha256 {_short(inp)}"))
    print(
        f"  rows      {total('rows_in')} in = {total('records')} records + "
        f"{total('rows_rejected')} rejected; {total('variants')} variants out"
    )
    keys = ("n", "p", "seed", "mlm", "vectors", "pos_filter", "sources")
    print(printable("  config    " + " ".join(f"{k}={cfg.get(k, '?')}" for k in keys)))
    print(printable(f"  versions  {m.get('versions')}"))
    if isinstance(m.get("shard_layout"), dict):
        print(printable(f"  columns   {_columns_line(m['shard_layout'])}"))
    if not shards or args.samples <= 0:
        return 0
    rng = random.Random(args.seed)
    name = rng.choice(sorted(shards))
    entry = shards[name]
    try:
        pf = pq.ParquetFile(out / entry["file"])
        if pf.metadata.num_rows == 0:
            return 0
        rows = pf.read_row_group(rng.randrange(pf.num_row_groups)).to_pylist()
        codec = LabelCodec.for_shards(pf.schema_arrow, m["fingerprint"]["columns"].get("task"))
    except (pa.ArrowException, OSError) as exc:
        raise KdaugError(
            f"{out} is damaged: cannot read shard {name} ({entry['file']}: {_first_line(exc)}); "
            f"{REBUILD}"
        ) from None
    changed = [r for r in rows if r["variant"] > 0] or rows
    print(printable(f"  samples from {entry['file']}:"))
    for r in rng.sample(changed, min(args.samples, len(changed))):
        reps = [Replacement(**x) for x in r["replacements"]]
        line = highlight(r["text_a"], reps, "a", False)
        if r.get("text_b") is not None:
            line += "  ||  " + highlight(r["text_b"], reps, "b", False)
        label = r.get("label")
        if codec.kind == "class" and isinstance(label, int) and 0 <= label < len(codec.names):
            label = codec.names[label]
        elif isinstance(label, float):
            label = codec.text(label)
        print(f"    {printable(r['id'])}#{r['variant']} [{printable(label)}] {line}")
    return 0


def _columns_line(layout: dict[str, Any]) -> str:
    """The shard columns of a build, in a line: texts, the label's kind, pass-through columns."""
    texts = "text_a, text_b" if layout.get("pair") else "text_a"
    kind = layout.get("label")
    label = {
        "class": f"label ClassLabel({', '.join(layout.get('names') or [])})",
        "score": "label float32 score",
        "string": "label string",
    }.get(kind, "no label")
    extra = layout.get("passthrough") or []
    passthrough = f"; passthrough {', '.join(extra)}" if extra else ""
    return f"{texts}; {label}{passthrough}"


def _short(inp: dict[str, Any]) -> str:
    sha = inp.get("sha256") or inp.get("hub_fingerprint") or "?"
    return str(sha)[:16]
