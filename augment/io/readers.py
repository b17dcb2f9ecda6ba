"""Stream records from csv / tsv / jsonl / parquet files or Hugging Face datasets, with column
mapping and GLUE presets.

Every physical data row becomes either a Record or a Reject (with its reason): nothing is dropped
silently. The rows come from the one table reader (kdaug.tables, which rejects unreadable rows);
this module maps a row's columns to a record's text, label and id and rejects the rows that
cannot be one (besides a bad text, id or label: a text longer than spaCy tags, an id an earlier
row has, JSON keys beyond the pass-through columns a build carries). The builder checks the rows
read against `kdaug.tables.count_input_rows`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import reprlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from augment.records import MAX_TEXT_CHARS, SURROGATE, Record, Reject
from kdaug import tables
from kdaug.errors import InputError
from kdaug.tables import PREVIEW, Row, Undecodable
from kdaug.tasks import GLUE_TASKS, NO_LABEL, Task, task_key

log = logging.getLogger(__name__)

# The most pass-through columns a JSON lines input brings: each row has keys of its own, so their
# union (rows x columns cells a shard) could grow with the file; a table's header has no cap.
MAX_PASSTHROUGH_COLUMNS = 256


@dataclass(frozen=True)
class Columns:
    """Where the fields are. Column names, or 0-based indices for files without a header.

    `task` names a GLUE preset whose label set is enforced (the registry's accepted labels)."""

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


def _preset(task: Task) -> Columns:
    """The column layout of a task's GLUE files (their label strings are passed through
    unchanged): the GLUE names, or their positions in a headerless file."""
    if task.header is None:
        b = task.text_b[0] if task.text_b else None
        return Columns(task.text_a[0], b, task.label[0], task.id)
    pos = task.header.index
    return Columns(
        pos(task.text_a[0]),
        pos(task.text_b[0]) if task.text_b else None,
        pos(task.label[0]),
        pos(task.id) if task.id else None,
        header=False,
    )


GLUE_PRESETS: dict[str, Columns] = {name: _preset(t) for name, t in GLUE_TASKS.items()}


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
        key = task_key(task)
        if key not in GLUE_PRESETS:
            raise InputError(f"unknown task preset {task!r}; choose from {sorted(GLUE_PRESETS)}")
        cols = replace(GLUE_PRESETS[key], task=key)
    else:
        cols = Columns()
    given = {"text_a": text, "text_b": text_b, "label": label, "id": id}
    given = {k: _maybe_index(v, cols.header) for k, v in given.items() if v is not None}
    return replace(cols, **given)


def hub_columns(cols: Columns, names: Iterable[Any]) -> Columns:
    """`cols`, or, when they are a GLUE preset's whose text column the input (with column
    `names`) lacks while it has the hub GLUE config's (`sentence1`, ...), the hub's names: its
    texts, `label` and `idx` where present (a Hugging Face `datasets` export of GLUE). Only the
    fields that still hold the preset's columns change; names given in their place stay."""
    names = set(names)
    if cols.task not in GLUE_TASKS or cols.text_a in names:
        return cols
    a, b = GLUE_TASKS[cols.task].hub_columns
    if a not in names or (b is not None and b not in names):
        return cols
    preset = GLUE_PRESETS[cols.task]
    if cols.text_a != preset.text_a:
        return cols  # a text column the user named: missing, as they will be told
    hub = {
        "text_a": a,
        "text_b": b,
        "label": "label" if "label" in names else None,
        "id": "idx" if "idx" in names else None,
    }
    kept = {k: getattr(cols, k) for k in hub if getattr(cols, k) != getattr(preset, k)}
    return replace(cols, **{**hub, **kept}, header=True)


def input_columns(cols: Columns, path: str | Path, fmt: str, split: str = "train") -> Columns:
    """`hub_columns` of an input file or dataset (a JSON lines file by its first row's keys)."""
    if cols.task not in GLUE_TASKS:
        return cols
    try:
        names = tables.column_names(path, fmt, True, split, json_first_row=True)
    except (InputError, OSError, ValueError):
        return cols  # the reader says what is wrong with the input, in its own words
    return hub_columns(cols, names)


def _maybe_index(name: str, header: bool) -> str | int:
    return int(name) if not header and name.isdigit() else name


def read_records(
    path: str | Path,
    columns: Columns,
    fmt: str | None = None,
    start: int = 0,
    split: str = "train",
    passthrough: tuple[str, ...] = (),
) -> Iterator[Record | Reject]:
    """Records (or Rejects) from `path`, in file order, starting at data row `start`; each
    record carries the `passthrough` columns (see `passthrough_columns`) as text, and a row with
    another column (a JSON key beyond them) is rejected. A row whose id an earlier record has is
    rejected (ids are text: 1 and "1" are one id), rows before `start` included."""
    path = Path(path)
    carried = frozenset(passthrough)
    ids = _SeenIds() if columns.id is not None else None

    def select(have: list[Any]) -> list[Any]:
        wanted = _need(columns, have, path)
        return wanted + [c for c in passthrough if c in have and c not in wanted]

    rows = tables.read_rows(path, fmt, header=columns.header, select=select, split=split)
    for item in rows:
        if not isinstance(item, Row):
            if item.index >= start:
                yield Reject(item.index, item.reason, None, item.raw, item.line)
            continue
        rec = to_record(item.index, item.values, columns, item.line, bool(passthrough))
        if isinstance(rec, Record):
            why = _beyond(rec, carried) or (ids and ids.repeated(rec.id))
            if why:
                rec = Reject(item.index, why, rec.id, _jsonable(item.values), item.line)
        if item.index >= start:
            yield rec


class _SeenIds:
    """The ids of the records read so far, as 16-byte digests (about 83 MB per million ids,
    however long they are; two ids share a digest with odds of about n**2 / 2**129)."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def repeated(self, rid: str) -> str | None:
        """Why a record with `rid` is refused (an earlier record has it), else None (noted)."""
        key = hashlib.blake2b(rid.encode("utf-8"), digest_size=16).digest()
        if key not in self._seen:
            self._seen.add(key)
            return None
        return (
            f"duplicate id {_ID_REPR.repr(rid)}: an earlier row has it (ids are compared as "
            'text, so 1 and "1" are one id); each id may appear once'
        )


def _beyond(rec: Record, carried: frozenset[str]) -> str | None:
    """Why a record with a column outside the pass-through columns is refused, else None."""
    extra = next((k for k in rec.passthrough or () if k not in carried), None)
    if extra is None:
        return None
    return (
        f"holds key {_ID_REPR.repr(extra)}, beyond the first {MAX_PASSTHROUGH_COLUMNS} keys of "
        "this file that a build carries as pass-through columns: give every row the same keys "
        "(or nest per-row data under one key)"
    )


# --- pass-through columns -----------------------------------------------------------------------


def mapped_columns(cols: Columns) -> list[str | int]:
    """The columns a mapping reads: text_a, text_b, label, id (those set, each once)."""
    return list(
        dict.fromkeys(c for c in (cols.text_a, cols.text_b, cols.label, cols.id) if c is not None)
    )


def missing_columns(cols: Columns, have: Iterable[Any], label_optional: bool) -> list[str | int]:
    """The mapped columns that `have` (a header, a schema, a dataset's column names) lacks; with
    `label_optional`, not the label column: a preset's label column may be absent (a test
    split, whose rows get no label)."""
    present = set(have)
    return [
        c
        for c in mapped_columns(cols)
        if c not in present and not (label_optional and c == cols.label)
    ]


def passthrough_columns(
    path: str | Path, fmt: str, columns: Columns, split: str = "train"
) -> tuple[str, ...]:
    """The input's columns that are not mapped to a text, label or id, in input order (see
    `kdaug.tables.column_names`: for a file without a header, the other field positions "0",
    "2", ...; for JSON lines, the first MAX_PASSTHROUGH_COLUMNS keys seen). The same input and
    mapping give the same names, so every shard of a build, resumed or not, has the same
    schema."""
    mapped = set(mapped_columns(columns))
    keys = MAX_PASSTHROUGH_COLUMNS + len(mapped)
    names = tables.column_names(path, fmt, columns.header, split, json_keys=keys)
    carried = tuple(dict.fromkeys(_safe(str(n)) for n in names if n not in mapped))
    return carried[:MAX_PASSTHROUGH_COLUMNS] if fmt == "jsonl" else carried


def passthrough_text(value: Any) -> str | None:
    """A pass-through value as text: strings as they are (lone surrogates escaped), dates in ISO
    form, other values as JSON (numbers, booleans, lists, objects), bytes decoded with escapes;
    None stays None."""
    if value is None or isinstance(value, str):
        return value if value is None else _safe(value)
    if isinstance(value, Undecodable):
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
    mapped = set(mapped_columns(cols))
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
        if isinstance(value, Undecodable):
            raise _Bad(f"text in column {key!r} is {value.reason}")
        if value is not None:
            raise _Bad(f"column {key!r} holds {_kind(value)}, expected a string")
    if value is None or not value.replace("\x00", "").strip():
        raise _Bad(f"empty or missing text in column {key!r}")
    if len(value) > MAX_TEXT_CHARS:
        raise _Bad(
            f"text in column {key!r} has {len(value):,} characters, more than the "
            f"{MAX_TEXT_CHARS:,} a text may have (the spaCy tagger's limit)"
        )
    return _check_unicode(value, key, "text")


def _id_value(raw: dict[Any, Any], key: str | int) -> str:
    value = raw.get(key)
    if isinstance(value, Undecodable):
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
        if cols.task and value == NO_LABEL and not isinstance(value, bool):
            return str(value)
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"label in column {key!r} is not a finite number ({value})")
        text = str(value)
    elif isinstance(value, Undecodable):
        raise _Bad(f"label in column {key!r} is {value.reason}")
    else:
        raise _Bad(f"column {key!r} holds {_kind(value)}, expected a string or a number")
    if cols.task:
        _check_task_label(text, key, cols.task)
    return text


def _allowed(task: str) -> str:
    t = GLUE_TASKS[task]
    labels = t.accepted_labels
    if labels is None:
        lo, hi = t.score_range or (-math.inf, math.inf)
        return f"{task} labels are numbers from {lo:g} to {hi:g}"
    return f"{task} labels are {', '.join(repr(x) for x in labels)}"


def _check_task_label(text: str, key: str | int, task: str) -> None:
    value = text.strip()
    if not value:
        raise _Bad(f"empty label in column {key!r}; {_allowed(task)}")
    t = GLUE_TASKS[task]
    labels = t.accepted_labels
    if labels is None:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        lo, hi = t.score_range or (-math.inf, math.inf)
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
_ID_REPR = reprlib.Repr()  # an id or key in a reason
_ID_REPR.maxstring = 80


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
    if isinstance(v, Undecodable):
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


# --- the mapped columns -------------------------------------------------------------------------


def _need(cols: Columns, have: list[Any], path: Path) -> list[str | int]:
    """The mapped columns present in `have` (a header or schema); refuses missing ones, except
    a preset's label column, whose absence marks a test split (rows without labels)."""
    missing = missing_columns(cols, have, label_optional=bool(cols.task))
    if missing:
        raise InputError(f"{path}: column(s) {missing} not found; the file has {have}")
    if cols.task and cols.label is not None and cols.label not in have:
        log.warning(
            "%s has no label column %r: its rows get no label (a test split?)", path, cols.label
        )
    return [c for c in mapped_columns(cols) if c in have]
