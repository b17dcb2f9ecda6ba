"""Stream records from csv / tsv / jsonl / parquet files or Hugging Face datasets, with column
mapping and GLUE presets.

Every data row becomes either a Record or a Reject (with its reason): nothing is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from augment.errors import InputError
from augment.records import Record, Reject

FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
# Files that mark a directory written by `datasets` (save_to_disk).
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class Columns:
    """Where the fields are. Column names, or 0-based indices for files without a header."""

    text_a: str | int = "text"
    text_b: str | int | None = None
    label: str | int | None = None
    id: str | int | None = None
    header: bool = True


# Column layouts of the GLUE tsv files (their label strings are passed through unchanged).
GLUE_PRESETS: dict[str, Columns] = {
    "sst2": Columns("sentence", label="label"),
    "cola": Columns(3, label=1, header=False),
    "mrpc": Columns("#1 String", "#2 String", label="Quality"),
    "stsb": Columns("sentence1", "sentence2", label="score", id="index"),
    "qqp": Columns("question1", "question2", label="is_duplicate", id="id"),
    "mnli": Columns("sentence1", "sentence2", label="gold_label", id="pairID"),
    "qnli": Columns("question", "sentence", label="label", id="index"),
    "rte": Columns("sentence1", "sentence2", label="label", id="index"),
    "wnli": Columns("sentence1", "sentence2", label="label", id="index"),
}


def columns_for(
    task: str | None = None,
    text: str | None = None,
    text_b: str | None = None,
    label: str | None = None,
    id: str | None = None,
) -> Columns:
    """A GLUE preset (if named) with any explicitly given column names applied on top."""
    if task:
        key = task.lower().replace("-", "")
        if key not in GLUE_PRESETS:
            raise InputError(f"unknown task preset {task!r}; choose from {sorted(GLUE_PRESETS)}")
        cols = GLUE_PRESETS[key]
    else:
        cols = Columns()
    given = {"text_a": text, "text_b": text_b, "label": label, "id": id}
    given = {k: _maybe_index(v, cols.header) for k, v in given.items() if v is not None}
    return replace(cols, **given)


def _maybe_index(name: str, header: bool) -> str | int:
    return int(name) if not header and name.isdigit() else name


def detect_format(path: Path) -> str:
    if path.is_dir():
        if any((path / m).is_file() for m in HF_MARKERS):
            return "hf"
        raise InputError(f"{path} is a directory but not a saved Hugging Face dataset")
    name = path.name.lower()
    for suffix, fmt in (
        (".tsv", "tsv"),
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".json", "jsonl"),
        (".parquet", "parquet"),
        (".txt", "tsv"),
    ):
        if name.endswith(suffix):
            return fmt
    raise InputError(f"cannot tell the format of {path}: use --format {{{','.join(FORMATS)}}}")


def resolve_format(path: str | Path, fmt: str | None = None) -> str:
    """The input's format: as given, else from the name; a missing path must be a hub dataset."""
    path = Path(path)
    if fmt not in (None, *FORMATS):
        raise InputError(f"unknown input format {fmt!r}; choose from {list(FORMATS)}")
    if not path.exists() and fmt != "hf":
        raise InputError(f"input not found: {path} (for a hub dataset pass --format hf)")
    return fmt or detect_format(path)


def read_records(
    path: str | Path,
    columns: Columns,
    fmt: str | None = None,
    start: int = 0,
    split: str = "train",
) -> Iterator[Record | Reject]:
    """Records (or Rejects) from `path`, in file order, starting at data row `start`."""
    fmt = resolve_format(path, fmt)
    path = Path(path)
    if fmt == "hf":
        source = _hf_rows(open_hf_dataset(str(path), split), columns, path)
    else:
        rows = {"csv": _csv_rows, "tsv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}
        source = rows[fmt](path, columns, fmt)
    for n, raw in enumerate(source):
        if n < start:
            continue
        yield raw if isinstance(raw, Reject) else to_record(n, raw, columns)


def to_record(row: int, raw: dict[Any, Any], cols: Columns) -> Record | Reject:
    """Map one raw row to a Record, or say why it cannot be one."""

    def get(key):
        value = raw.get(key)
        return None if value is None else str(value) if not isinstance(value, str) else value

    text_a = get(cols.text_a)
    rid = get(cols.id) if cols.id is not None else str(row)
    reason = None
    if text_a is None or not text_a.strip():
        reason = f"empty or missing text in column {cols.text_a!r}"
    text_b = get(cols.text_b) if cols.text_b is not None else None
    if cols.text_b is not None and (text_b is None or not text_b.strip()):
        reason = reason or f"empty or missing text in column {cols.text_b!r}"
    if cols.id is not None and (rid is None or not rid.strip()):
        reason = reason or f"empty or missing id in column {cols.id!r}"
    if reason:
        return Reject(row, reason, rid, _jsonable(raw))
    label = get(cols.label) if cols.label is not None else None
    return Record(rid, text_a, text_b, label)


def _jsonable(raw: dict[Any, Any]) -> dict[str, Any]:
    return {
        str(k): (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
        for k, v in raw.items()
    }


def _need(cols: Columns, have: list[str] | None, path: Path) -> None:
    wanted = [c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c is not None]
    if have is None:
        return
    missing = [c for c in wanted if c not in have]
    if missing:
        raise InputError(f"{path}: column(s) {missing} not found; the file has {have}")


def _csv_rows(path: Path, cols: Columns, fmt: str) -> Iterator[dict | Reject]:
    # GLUE tsv files are not quoted (sentences contain quote characters): read them verbatim.
    quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
    delimiter = "\t" if fmt == "tsv" else ","
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        f = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader) if cols.header else None
        except StopIteration:
            return
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"cannot read the header of {path}: {exc}") from None
        _need(cols, header, path)
        width = len(header) if header else None
        n = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                yield Reject(n, f"unreadable row: {exc}")
                n += 1
                continue
            if header is None:
                yield dict(enumerate(fields))
            elif len(fields) != width:
                yield Reject(
                    n,
                    f"row has {len(fields)} fields, the header has {width}",
                    None,
                    {"fields": fields},
                )
            else:
                yield dict(zip(header, fields, strict=True))
            n += 1


def _jsonl_rows(path: Path, cols: Columns, fmt: str) -> Iterator[dict | Reject]:
    with open(path, "rb") as f:
        for n, line in enumerate(f):
            if not line.strip():
                yield Reject(n, "blank line")
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Reject(
                    n, f"invalid JSON: {exc}", None, {"line": line[:500].decode("utf-8", "replace")}
                )
                continue
            if not isinstance(obj, dict):
                yield Reject(n, f"JSON line is a {type(obj).__name__}, not an object")
                continue
            yield obj


def _parquet_rows(path: Path, cols: Columns, fmt: str) -> Iterator[dict | Reject]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"cannot read Parquet file {path}: {exc}") from None
    _need(cols, pf.schema_arrow.names, path)
    wanted = [c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c is not None]
    for batch in pf.iter_batches(batch_size=4096, columns=list(dict.fromkeys(wanted))):
        yield from batch.to_pylist()


def open_hf_dataset(name: str, split: str = "train"):
    """A `datasets.Dataset`: saved to disk (a directory) or, where a hub is reachable, a hub name
    written `NAME` or `NAME:CONFIG` (downloaded to the datasets cache, memory-mapped)."""
    import datasets

    path = Path(name)
    try:
        if path.is_dir():
            ds = datasets.load_from_disk(str(path))
        else:
            repo, _, config = name.partition(":")
            ds = datasets.load_dataset(repo, config or None, split=split)
    except Exception as exc:  # datasets raises many types (missing files, hub errors)
        raise InputError(f"cannot open Hugging Face dataset {name!r}: {exc}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise InputError(f"{name}: no split {split!r}; it has {sorted(ds)} (use --split)")
        ds = ds[split]
    return ds


def _hf_rows(ds, cols: Columns, path: Path) -> Iterator[dict]:
    _need(cols, list(ds.column_names), path)
    wanted = list(
        dict.fromkeys(c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c is not None)
    )
    for table in ds.select_columns(wanted).with_format("arrow").iter(batch_size=4096):
        yield from table.to_pylist()


def describe_input(
    path: str | Path, fmt: str, split: str = "train", header: bool = True
) -> dict[str, Any]:
    """Content fingerprint and size of the input: sha256 of every byte (streamed; about 1 s per
    GB, small next to augmenting that GB) and an estimate of its data rows for progress bars."""
    path = Path(path)
    if fmt == "hf" and not path.exists():
        ds = open_hf_dataset(str(path), split)
        return {"sha256": None, "hub_fingerprint": ds._fingerprint, "rows_estimate": len(ds)}
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    size = newlines = 0
    last = b"\n"
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(path).metadata.num_rows
    elif fmt == "hf":
        rows = len(open_hf_dataset(str(path), split))
    else:  # one row a line (csv fields spanning lines make this an over-estimate)
        rows = newlines + (last != b"\n") - (header and fmt in ("csv", "tsv"))
    return {"sha256": digest.hexdigest(), "bytes": size, "rows_estimate": max(rows, 0)}
