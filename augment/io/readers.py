"""Stream records from csv / tsv / jsonl / parquet files or Hugging Face datasets, with column
mapping and GLUE presets.

Every physical data row becomes either a Record or a Reject (with its reason): nothing is dropped
silently. Text files are read as bytes and cut into lines at b"\\n" only, and each line is decoded
on its own, so bytes that are not UTF-8 reject exactly the row that holds them (a decoder working
in chunks would discard the rows around them). `count_input_rows` counts the rows again by a
separate mechanism (for all but csv, `describe_input` takes the same count in its hashing pass);
the builder fails a run whose reading does not match it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import re
import reprlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from augment.records import SURROGATE, Record, Reject
from kdaug.errors import InputError

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
FILE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
# Files that mark a directory written by `datasets` (save_to_disk).
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
PREVIEW = 1000  # characters of an unreadable row kept in its reject


@dataclass(frozen=True)
class Columns:
    """Where the fields are. Column names, or 0-based indices for files without a header.

    `task` names a GLUE preset whose label set is enforced (see TASK_LABELS)."""

    text_a: str | int = "text"
    text_b: str | int | None = None
    label: str | int | None = None
    id: str | int | None = None
    header: bool = True
    task: str | None = None

    def __post_init__(self) -> None:
        if self.task is not None and self.task not in GLUE_PRESETS:
            raise InputError(
                f"unknown task preset {self.task!r}; choose from {sorted(GLUE_PRESETS)}"
            )


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
# The labels a preset accepts: the values of the GLUE files, and the label names and class
# indices of Hugging Face `datasets` (the values `distill` maps to targets). None: a regression
# score in STSB_RANGE. An integer -1, `datasets`' label of a test split's rows, is accepted as
# "no label", and so are rows of a file without the label column (GLUE test files).
TASK_LABELS: dict[str, tuple[str, ...] | None] = {
    "sst2": ("0", "1", "negative", "positive"),
    "cola": ("0", "1", "unacceptable", "acceptable"),
    "mrpc": ("0", "1", "not_equivalent", "equivalent"),
    "stsb": None,
    "qqp": ("0", "1", "not_duplicate", "duplicate"),
    "mnli": ("entailment", "neutral", "contradiction", "0", "1", "2"),
    "qnli": ("entailment", "not_entailment", "0", "1"),
    "rte": ("entailment", "not_entailment", "0", "1"),
    "wnli": ("0", "1", "not_entailment", "entailment"),
}
STSB_RANGE = (0.0, 5.0)
UNLABELED = -1
_BOM = b"\xef\xbb\xbf"


def columns_for(
    task: str | None = None,
    text: str | None = None,
    text_b: str | None = None,
    label: str | None = None,
    id: str | None = None,
) -> Columns:
    """A GLUE preset (if named; its labels are then checked) with any explicitly given column
    names applied on top."""
    if task:
        key = task.lower().replace("-", "")
        if key not in GLUE_PRESETS:
            raise InputError(f"unknown task preset {task!r}; choose from {sorted(GLUE_PRESETS)}")
        cols = replace(GLUE_PRESETS[key], task=key)
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
    if fmt in FILE_FORMATS and path.is_dir():
        raise InputError(
            f"{path} is a directory, but --format {fmt} reads one file "
            "(a dataset saved with save_to_disk is --format hf)"
        )
    return fmt or detect_format(path)


def read_records(
    path: str | Path,
    columns: Columns,
    fmt: str | None = None,
    start: int = 0,
    split: str = "train",
    passthrough: tuple[str, ...] = (),
) -> Iterator[Record | Reject]:
    """Records (or Rejects) from `path`, in file order, starting at data row `start`; each
    record carries the `passthrough` columns (see `passthrough_columns`) as text."""
    fmt = resolve_format(path, fmt)
    path = Path(path)
    if fmt == "hf":
        source = _hf_rows(open_hf_dataset(str(path), split), columns, path, passthrough)
    elif fmt == "parquet":
        source = _parquet_rows(path, columns, passthrough)
    else:
        rows = {"csv": _csv_rows, "tsv": _tsv_rows, "jsonl": _jsonl_rows}
        source = rows[fmt](path, columns)
    for n, item in enumerate(source):
        if n < start:
            continue
        if isinstance(item, Reject):
            yield item
        else:
            yield to_record(n, item[1], columns, item[0], bool(passthrough))


# --- pass-through columns -----------------------------------------------------------------------


def _mapped(cols: Columns) -> set[str | int]:
    return {c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c is not None}


def passthrough_columns(
    path: str | Path, fmt: str, columns: Columns, split: str = "train"
) -> tuple[str, ...]:
    """The input's columns that are not mapped to a text, label or id, in input order: a header's
    or schema's other names; for a file without a header, the other field positions ("0", "2",
    ...) up to the widest row; for JSON lines, the other keys of every object, in order of first
    appearance (one more pass over the file). The same input and mapping give the same names, so
    every shard of a build, resumed or not, has the same schema."""
    path = Path(path)
    mapped = _mapped(columns)
    names: list[str | int]
    if fmt == "hf":
        names = list(open_hf_dataset(str(path), split).column_names)
    elif fmt == "parquet":
        names = list(_parquet_file(path).schema_arrow.names)
    elif fmt == "jsonl":
        seen: dict[str, None] = {}
        for item in _jsonl_rows(path, columns):
            if not isinstance(item, Reject):
                seen.update(dict.fromkeys(item[1]))
        names = list(seen)
    elif columns.header:
        names = _header(path, fmt, columns)
    else:
        rows = _csv_rows(path, columns) if fmt == "csv" else _tsv_rows(path, columns)
        width = max((len(item[1]) for item in rows if not isinstance(item, Reject)), default=0)
        names = list(range(width))
    return tuple(dict.fromkeys(_safe(str(n)) for n in names if n not in mapped))


def _header(path: Path, fmt: str, cols: Columns) -> list[str]:
    """The header of a csv / tsv file (already checked to be readable by the reader)."""
    with _open(path) as f:
        first = next(_lines(f), None)
    if first is None:
        return []
    text = _eol(first[2].decode("utf-8", "replace"))
    if fmt == "csv":
        return next(csv.reader([text]), [])
    return text.split("\t")


def passthrough_text(value: Any) -> str | None:
    """A pass-through value as text: strings as they are (lone surrogates escaped), dates in ISO
    form, other values as JSON (numbers, booleans, lists, objects), bytes decoded with escapes;
    None stays None."""
    if value is None or isinstance(value, str):
        return value if value is None else _safe(value)
    if isinstance(value, _Undecodable):
        return value.preview
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if hasattr(value, "isoformat"):  # dates and times (Parquet, datasets)
        return _safe(str(value.isoformat()))
    try:
        return _safe(json.dumps(value, ensure_ascii=False, default=_json_default))
    except (TypeError, ValueError, RecursionError):  # huge integers, deep nesting
        return _safe(_REPR.repr(value))


def _json_default(value: Any) -> Any:
    """What json.dumps cannot write itself, inside a pass-through list or object."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)  # Decimal and the like


# --- one raw row to a record -------------------------------------------------------------------


class _Undecodable:
    """A string value of a Parquet / Arrow column whose bytes are not UTF-8."""

    def __init__(self, exc: UnicodeDecodeError) -> None:
        data = bytes(exc.object)
        self.reason = f"not valid UTF-8 at byte offset {exc.start} (0x{data[exc.start]:02x})"
        self.preview = data[:PREVIEW].decode("utf-8", "backslashreplace")


class _Bad(Exception):
    """Why one field cannot be used (internal: becomes the reject's reason)."""


def to_record(
    row: int,
    raw: dict[Any, Any],
    cols: Columns,
    line: int | None = None,
    passthrough: bool = False,
) -> Record | Reject:
    """Map one raw row to a Record, or say why it cannot be one: a missing or empty (or NUL-only)
    text, a value of the wrong type (an object, list, number or bytes where text is expected), a
    lone surrogate, or a label outside the task's label set. With `passthrough`, the row's other
    columns are carried as text (by name; a field position of a file without a header as "0",
    "1", ...); they never reject a row."""
    rid: str | None = str(row)
    try:
        if cols.id is not None:
            rid = None
            rid = _id_value(raw, cols.id)
        text_a = _text_value(raw, cols.text_a)
        text_b = _text_value(raw, cols.text_b) if cols.text_b is not None else None
        label = _label_value(raw, cols) if cols.label is not None else None
    except _Bad as bad:
        if rid is None:  # the id itself is unusable: keep a printable form of it, if any
            rid = _printable_id(raw.get(cols.id))
        return Reject(row, str(bad), rid, _jsonable(raw), line)
    if not passthrough:
        return Record(rid, text_a, text_b, label)
    mapped = _mapped(cols)
    extra = {_safe(str(k)): passthrough_text(v) for k, v in raw.items() if k not in mapped}
    return Record(rid, text_a, text_b, label, extra)


def _printable_id(value: Any) -> str | None:
    if isinstance(value, str):
        return _safe(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _kind(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    name = {dict: "dict", list: "list", tuple: "list"}.get(type(value), type(value).__name__)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _check_unicode(value: str, key: str | int, what: str) -> str:
    m = SURROGATE.search(value)
    if m:
        raise _Bad(
            f"{what} in column {key!r} holds a lone surrogate (U+{ord(m.group()):04X} at "
            f"character {m.start()}), which is not valid Unicode"
        )
    return value


def _text_value(raw: dict[Any, Any], key: str | int) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        if isinstance(value, _Undecodable):
            raise _Bad(f"text in column {key!r} is {value.reason}")
        if value is not None:
            raise _Bad(f"column {key!r} holds {_kind(value)}, expected a string")
    if value is None or not value.replace("\x00", "").strip():
        raise _Bad(f"empty or missing text in column {key!r}")
    return _check_unicode(value, key, "text")


def _id_value(raw: dict[Any, Any], key: str | int) -> str:
    value = raw.get(key)
    if isinstance(value, _Undecodable):
        raise _Bad(f"id in column {key!r} is {value.reason}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"column {key!r} holds {_kind(value)}, expected a string or an integer id")
    if value is None or not value.replace("\x00", "").strip():
        raise _Bad(f"empty or missing id in column {key!r}")
    return _check_unicode(value, key, "id")


def _label_value(raw: dict[Any, Any], cols: Columns) -> str | None:
    key = cols.label
    value = raw.get(key)
    if isinstance(value, str):
        text = _check_unicode(value, key, "label")
    elif value is None:
        if cols.task and key in raw:  # a null label in a labelled file
            raise _Bad(f"empty label in column {key!r}; {_allowed(cols.task)}")
        return None  # no label column (a test split), or a row without the key
    elif isinstance(value, int):  # bool included: "True" / "False"
        if cols.task and value == UNLABELED and not isinstance(value, bool):
            return str(value)
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"label in column {key!r} is not a finite number ({value})")
        text = str(value)
    elif isinstance(value, _Undecodable):
        raise _Bad(f"label in column {key!r} is {value.reason}")
    else:
        raise _Bad(f"column {key!r} holds {_kind(value)}, expected a string or a number")
    if cols.task:
        _check_task_label(text, key, cols.task)
    return text


def _allowed(task: str) -> str:
    labels = TASK_LABELS.get(task)
    if labels is None:
        lo, hi = STSB_RANGE
        return f"{task} labels are numbers from {lo:g} to {hi:g}"
    return f"{task} labels are {', '.join(repr(x) for x in labels)}"


def _check_task_label(text: str, key: str | int, task: str) -> None:
    value = text.strip()
    if not value:
        raise _Bad(f"empty label in column {key!r}; {_allowed(task)}")
    labels = TASK_LABELS.get(task)
    if labels is None:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        lo, hi = STSB_RANGE
        if not lo <= score <= hi:  # false for nan
            raise _Bad(
                f"label {text!r} is not a {task} score: expected a number from {lo:g} to {hi:g}"
            )
    elif value not in labels:
        raise _Bad(f"label {text!r} is not a {task} label; {_allowed(task)}")


def _safe(text: str) -> str:
    """`text` with lone surrogates written as escapes, so that it can be stored as UTF-8."""
    return (
        text.encode("utf-8", "backslashreplace").decode("utf-8") if SURROGATE.search(text) else text
    )


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = PREVIEW


def _jsonable(raw: dict[Any, Any]) -> dict[str, Any]:
    """The raw fields of a rejected row, as values a UTF-8 JSON line can hold (bounded)."""
    return {_safe(str(k)): _plain(v) for k, v in raw.items()}


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _safe(v)
    if isinstance(v, int):
        try:
            str(v)  # beyond sys.get_int_max_str_digits() it cannot be written
        except ValueError:
            return f"<an integer of {v.bit_length()} bits>"
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, _Undecodable):
        return v.preview
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v[:PREVIEW]).decode("utf-8", "backslashreplace")
    if isinstance(v, (dict, list)):
        try:  # kept as it is when small and storable as UTF-8 JSON
            text = json.dumps(v, ensure_ascii=False)
            text.encode("utf-8")
        except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            text = None
        if text is not None and len(text) <= PREVIEW:
            return v
    return _safe(_REPR.repr(v))  # bounded in length and depth


# --- the readers --------------------------------------------------------------------------------


def _need(cols: Columns, have: list[str] | None, path: Path) -> list[str | int]:
    """The mapped columns present in `have` (a header or schema); refuses missing ones, except
    a preset's label column, whose absence marks a test split (rows without labels)."""
    wanted = list(
        dict.fromkeys(c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c is not None)
    )
    if have is None:
        return wanted
    missing = [c for c in wanted if c not in have]
    if cols.task and missing == [cols.label]:
        log.warning(
            "%s has no label column %r: its rows get no label (a test split?)", path, cols.label
        )
        return [c for c in wanted if c != cols.label]
    if missing:
        raise InputError(f"{path}: column(s) {missing} not found; the file has {have}")
    return wanted


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 (the callers close it)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _lines(f: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, bytes skipped at its start, the line) for each line of `f`, cut at
    b"\\n" only (a "\\r" before it stays, a lone "\\r" is data); a UTF-8 BOM is skipped."""
    for ln, line in enumerate(f, 1):
        if ln == 1 and line.startswith(_BOM):
            yield ln, len(_BOM), line[len(_BOM) :]
        else:
            yield ln, 0, line


def _not_utf8(line: bytes, exc: UnicodeDecodeError, ln: int, skipped: int) -> str:
    return (
        f"not valid UTF-8 at byte offset {skipped + exc.start} of line {ln} "
        f"(0x{line[exc.start]:02x})"
    )


def _preview(data: bytes) -> str:
    return data[:PREVIEW].decode("utf-8", "backslashreplace")


def _eol(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


def _tsv_rows(path: Path, cols: Columns) -> Iterator[tuple[int, dict] | Reject]:
    """GLUE tsv: one row a line, fields cut at tabs, no quoting (sentences contain quote
    characters; they are read verbatim)."""
    with _open(path) as f:
        lines = _lines(f)
        header = None
        if cols.header:
            first = next(lines, None)
            if first is None:
                return
            ln, skipped, line = first
            try:
                header = _eol(line.decode("utf-8")).split("\t")
            except UnicodeDecodeError as exc:
                reason = _not_utf8(line, exc, ln, skipped)
                raise InputError(f"cannot read the header of {path}: {reason}") from None
            _need(cols, header, path)
        width = len(header) if header else None
        for n, (ln, skipped, line) in enumerate(lines):
            try:
                text = _eol(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                reason = _not_utf8(line, exc, ln, skipped)
                yield Reject(n, reason, None, {"line": _preview(line)}, line=ln)
                continue
            if not text:
                yield Reject(n, "blank line", line=ln)
                continue
            yield _fields_row(n, ln, text.split("\t"), header, width)


_END = object()


def _fields_row(
    n: int, ln: int, fields: list[str], header: list[str] | None, width: int | None
) -> tuple[int, dict[Any, str]] | Reject:
    """One delimited row: (line, fields by column name or index), or a Reject when its field
    count differs from the header's."""
    if header is None:
        return ln, dict(enumerate(fields))
    if len(fields) != width:
        reason = f"row has {len(fields)} fields, the header has {width}"
        return Reject(n, reason, None, {"fields": fields}, line=ln)
    return ln, dict(zip(header, fields, strict=True))


def _csv_rows(path: Path, cols: Columns) -> Iterator[tuple[int, dict] | Reject]:
    """csv with quoting (quoted fields may span lines). Each line is decoded on its own; a
    record with a line that is not UTF-8 is rejected whole."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _open(path) as f:
        taken: list[tuple[int, str | None, bytes]] = []  # the current record's lines

        def feed() -> Iterator[str]:
            for ln, skipped, line in _lines(f):
                try:
                    text, bad = line.decode("utf-8"), None
                except UnicodeDecodeError as exc:
                    text = line.decode("utf-8", "surrogateescape")  # keeps the line's structure
                    bad = _not_utf8(line, exc, ln, skipped)
                taken.append((ln, bad, line))
                yield text

        reader = csv.reader(feed(), delimiter=",", quoting=csv.QUOTE_MINIMAL)

        def take() -> tuple[Any, str | None]:
            taken.clear()
            try:
                fields = next(reader, _END)
            except csv.Error as exc:
                return None, f"unreadable row: {exc}"
            bad = next((b for _, b, _ in taken if b), None)
            return fields, bad

        header = None
        if cols.header:
            header, bad = take()
            if header is _END:
                return
            if bad:
                raise InputError(f"cannot read the header of {path}: {bad}")
            _need(cols, header, path)
        width = len(header) if header else None
        n = 0
        while True:
            fields, bad = take()
            if fields is _END:
                return
            if not taken:  # an error without reading: nothing left
                return
            ln = taken[0][0]
            if bad:
                data = b"".join(line for _, _, line in taken)
                yield Reject(n, bad, None, {"line": _preview(data)}, line=ln)
            else:
                yield _fields_row(n, ln, fields, header, width)
            n += 1


def _jsonl_rows(path: Path, cols: Columns) -> Iterator[tuple[int, dict] | Reject]:
    """One JSON object a line. Unreadable lines (not UTF-8, invalid JSON, nested too deeply,
    an integer of more digits than Python converts) are rejected one by one."""
    with _open(path) as f:
        for n, (ln, skipped, line) in enumerate(_lines(f)):
            if not line.strip():
                yield Reject(n, "blank line", line=ln)
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                reason = _not_utf8(line, exc, ln, skipped)
            except RecursionError:
                reason = "invalid JSON: nested too deeply"
            except json.JSONDecodeError as exc:
                reason = f"invalid JSON: {exc}"
            except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
                reason = f"unreadable JSON value: {exc}"
            else:
                if isinstance(obj, dict):
                    yield ln, obj
                else:
                    yield Reject(n, f"JSON line is a {type(obj).__name__}, not an object", line=ln)
                continue
            yield Reject(n, reason, None, {"line": _preview(line)}, line=ln)


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"cannot read Parquet file {path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _parquet_rows(
    path: Path, cols: Columns, extra: tuple[str, ...] = ()
) -> Iterator[tuple[None, dict]]:
    import pyarrow as pa

    pf = _parquet_file(path)
    wanted = _need(cols, pf.schema_arrow.names, path)
    wanted += [c for c in extra if c in pf.schema_arrow.names and c not in wanted]
    try:
        for batch in pf.iter_batches(batch_size=4096, columns=wanted):
            for raw in _arrow_rows(batch):
                yield None, raw
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet file {path}: {_one_line(exc)}") from None


def _arrow_rows(batch) -> list[dict]:
    """The rows of an Arrow batch or table; a string that is not UTF-8 becomes an _Undecodable
    value (its row is then rejected) instead of failing the whole batch."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        pass
    names = batch.schema.names
    columns = [_column_values(batch.column(i)) for i in range(len(names))]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _column_values(col) -> list[Any]:
    try:
        return col.to_pylist()
    except UnicodeDecodeError:
        pass
    values: list[Any] = []
    for i in range(len(col)):
        try:
            values.append(col[i].as_py())
        except UnicodeDecodeError as exc:
            values.append(_Undecodable(exc))
    return values


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
        raise InputError(f"cannot open Hugging Face dataset {name!r}: {_one_line(exc)}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise InputError(f"{name}: no split {split!r}; it has {sorted(ds)} (use --split)")
        ds = ds[split]
    return ds


def _hf_rows(
    ds, cols: Columns, path: Path, extra: tuple[str, ...] = ()
) -> Iterator[tuple[None, dict]]:
    wanted = _need(cols, list(ds.column_names), path)
    wanted += [c for c in extra if c in ds.column_names and c not in wanted]
    for table in ds.select_columns(wanted).with_format("arrow").iter(batch_size=4096):
        for raw in _arrow_rows(table):
            yield None, raw


# --- the independent count ----------------------------------------------------------------------


def count_input_rows(path: str | Path, fmt: str, split: str = "train", header: bool = True) -> int:
    """The input's data rows, counted without the record parser; each must come out of the
    reader as a record or a reject. tsv / jsonl: lines (cut at b"\\n", a last line without one
    included, blank lines included: the readers reject them); csv: records, by a quote-aware scan
    of the bytes (quoted fields may span lines); parquet: the footer's row count; a saved or hub
    dataset: its num_rows. A header line (csv, tsv) is not a data row."""
    path = Path(path)
    if fmt == "hf":
        return open_hf_dataset(str(path), split).num_rows
    if fmt == "parquet":
        return _parquet_file(path).metadata.num_rows
    if fmt not in FILE_FORMATS:
        raise InputError(f"unknown input format {fmt!r}; choose from {list(FORMATS)}")
    rows = _count_csv_records(path) if fmt == "csv" else _count_lines(path)
    return max(rows - (header and fmt in ("csv", "tsv")), 0)


def check_input_rows(
    path: str | Path,
    fmt: str,
    split: str,
    header: bool,
    rows_read: int,
    expected: int | None = None,
) -> None:
    """Fail (one line) when the rows the reader produced differ from `count_input_rows`, or from
    `expected` when given (the same count, taken by `describe_input` as it hashed the input)."""
    if expected is None:
        expected = count_input_rows(path, fmt, split, header)
    if rows_read != expected:
        raise InputError(
            f"row accounting failed: read {rows_read} rows of {path}, but it has {expected} "
            "data rows (counted independently); the build is not marked complete"
        )


def _count_lines(path: Path) -> int:
    newlines, last = 0, b"\n"
    with _open(path) as f:
        while chunk := f.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return newlines + (last != b"\n")


# States of the csv record scan (those of CPython's csv parser that decide where a record ends).
_START, _FIELD, _QUOTED, _QUOTE_IN_QUOTED, _EAT_CRNL = range(5)
_CSV_SPECIAL = re.compile(rb'["\r\n,]')
_QUOTE, _COMMA = ord('"'), ord(",")


def _count_csv_records(path: Path) -> int:
    """Records of a csv file (comma, double quote, doubled quotes as escapes, lenient about
    quotes inside unquoted fields, as `csv.reader` with its defaults)."""
    records, quoted = 0, False
    with _open(path) as f:
        for ln, line in enumerate(f, 1):
            if ln == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if b'"' in line:
                quoted = _ends_quoted(line, quoted)
            if not quoted:
                records += 1
    return records + quoted  # an unterminated quoted field runs to the end: one more record


def _ends_quoted(line: bytes, quoted: bool) -> bool:
    """Whether a line that starts inside a quoted field (or not) ends inside one."""
    state = _QUOTED if quoted else _START
    pos = 0
    for m in _CSV_SPECIAL.finditer(line):
        i = m.start()
        if i > pos:  # ordinary characters before this one
            if state in (_START, _QUOTE_IN_QUOTED):
                state = _FIELD
            elif state == _EAT_CRNL:
                return False  # "new-line character seen in unquoted field": the line ends
        c = line[i]
        if state == _QUOTED:
            if c == _QUOTE:
                state = _QUOTE_IN_QUOTED
        elif state == _QUOTE_IN_QUOTED:
            state = _QUOTED if c == _QUOTE else _START if c == _COMMA else _EAT_CRNL
        elif state in (_START, _FIELD):
            if c == _COMMA:
                state = _START
            elif c == _QUOTE:
                state = _QUOTED if state == _START else _FIELD
            else:
                state = _EAT_CRNL
        elif c in (_QUOTE, _COMMA):  # _EAT_CRNL
            return False
        pos = i + 1
    return state == _QUOTED


def describe_input(
    path: str | Path, fmt: str, split: str = "train", header: bool = True
) -> dict[str, Any]:
    """Content fingerprint and size of the input: sha256 of every byte (streamed; about 1 s per
    GB, small next to augmenting that GB) and an estimate of its data rows for progress bars.
    Where that estimate is exact, `rows` holds it too: the count of `count_input_rows`, taken in
    the hashing pass (tsv / jsonl lines, parquet's footer, a dataset's num_rows; not csv, whose
    quoted fields may span lines)."""
    path = Path(path)
    if fmt == "hf" and not path.exists():
        ds = open_hf_dataset(str(path), split)
        rows = len(ds)
        return {
            "sha256": None,
            "hub_fingerprint": ds._fingerprint,
            "rows_estimate": rows,
            "rows": rows,
        }
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    size = newlines = 0
    last = b"\n"
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with _open(f) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
    if fmt == "parquet":
        rows = _parquet_file(path).metadata.num_rows
    elif fmt == "hf":
        rows = len(open_hf_dataset(str(path), split))
    else:  # one row a line (csv fields spanning lines make this an over-estimate)
        rows = max(newlines + (last != b"\n") - (header and fmt in ("csv", "tsv")), 0)
    info = {"sha256": digest.hexdigest(), "bytes": size, "rows_estimate": rows}
    if fmt != "csv":
        info["rows"] = rows
    return info
