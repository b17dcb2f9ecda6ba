"""Stream records from csv / tsv / jsonl / parquet files, with column mapping and GLUE presets.

Every data row becomes either a Record or a Reject (with its reason): nothing is dropped silently.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from augment.errors import InputError
from augment.records import Record, Reject

FORMATS = ("csv", "tsv", "jsonl", "parquet")


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


def read_records(
    path: str | Path, columns: Columns, fmt: str | None = None, start: int = 0
) -> Iterator[Record | Reject]:
    """Records (or Rejects) from `path`, in file order, starting at data row `start`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown input format {fmt!r}; choose from {list(FORMATS)}")
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
