"""The one reader of table rows: csv / tsv / jsonl / Parquet files and Hugging Face datasets.

Every physical data row becomes either a Row (its values by column name, or by 0-based position
for a file without a header) or a RowReject with its reason: nothing is dropped, padded or cut
silently. Text files are read as bytes and cut into lines at b"\\n" only, and each line is decoded
on its own, so bytes that are not UTF-8 reject exactly the row that holds them (a decoder working
in chunks would discard the rows around them); a UTF-8 BOM is skipped. A reader either yields its
rejects or, given an error type, raises one naming the file, line and reason (`read_rows`).
`count_input_rows` counts the rows again by a separate mechanism (for all but csv,
`describe_input` takes the same count in its hashing pass), so that a caller can check that its
reading lost nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kdaug.errors import InputError, one_line
from kdaug.files import file_chunks

FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
FILE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
# Files that mark a directory written by `datasets` (save_to_disk).
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
PREVIEW = 1000  # characters of an unreadable row kept in its reject
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Row:
    """One data row: its 0-based index among the file's data rows (rejected ones included), the
    1-based line where it starts (csv, tsv, jsonl; None for Parquet and datasets) and its values."""

    index: int
    line: int | None
    values: dict[Any, Any]


@dataclass(frozen=True)
class RowReject:
    """A data row that cannot be read, with the reason (and a bounded view of what it held)."""

    index: int
    reason: str
    raw: dict[str, Any] | None = None
    line: int | None = None
    blank: bool = False  # a blank line, or a csv record without fields

    def where(self) -> str:
        """'line N' (text files) or 'row N' (1-based)."""
        return f"line {self.line}" if self.line is not None else f"row {self.index + 1}"


class Undecodable:
    """A string value of a Parquet / Arrow column whose bytes are not UTF-8."""

    def __init__(self, exc: UnicodeDecodeError) -> None:
        data = bytes(exc.object)
        self.reason = f"not valid UTF-8 at byte offset {exc.start} (0x{data[exc.start]:02x})"
        self.preview = data[:PREVIEW].decode("utf-8", "backslashreplace")


Select = Callable[[list[Any]], list[Any]]


def read_rows(
    path: str | Path,
    fmt: str | None = None,
    *,
    header: bool = True,
    names: tuple[str, ...] | None = None,
    select: Select | None = None,
    split: str = "train",
    skip_blank: bool = False,
    error: type[Exception] | None = None,
) -> Iterator[Row | RowReject]:
    """The rows of `path` in file order (`fmt` None: from the name, see `resolve_format`).

    `header`: whether a csv / tsv file starts with its column names; a row whose field count
    differs from the header's is rejected. `names`: the column names of a headerless file (its
    rows are then checked against their count too; without them, a headerless file's rows are
    keyed by field position). `select(have)` sees the header or schema before any row (it may
    raise) and, for Parquet and datasets, returns the columns to read (default: all).
    `skip_blank`: blank lines (text files; an empty csv record) are not rows at all instead of
    rejects. `error`: raise this type with "FILE:LINE: REASON" at the first reject instead of
    yielding it, and at the first string of a Parquet / Arrow column that is not UTF-8 (which
    is otherwise yielded as an Undecodable value)."""
    fmt = resolve_format(path, fmt)
    path = Path(path)
    if fmt == "hf":
        source = _hf_rows(open_hf_dataset(str(path), split), select)
    elif fmt == "parquet":
        source = _parquet_rows(path, select)
    elif fmt == "jsonl":
        source = _jsonl_rows(path)
    else:
        reader = _csv_rows if fmt == "csv" else _tsv_rows
        source = reader(path, header, names, select)
    arrow = fmt in ("parquet", "hf")
    for item in source:
        if isinstance(item, RowReject):
            if skip_blank and item.blank:
                continue
            if error is not None:
                raise error(f"{path}:{item.line}: {item.reason}")
        elif error is not None and arrow:
            for key, value in item.values.items():
                if isinstance(value, Undecodable):
                    where = item.index + 1
                    raise error(f"{path}: row {where}: column {key!r} is {value.reason}")
        yield item


def column_names(
    path: str | Path,
    fmt: str,
    header: bool = True,
    split: str = "train",
    json_keys: int | None = None,
    json_first_row: bool = False,
) -> list[str | int]:
    """The columns of a table, in input order: a header's or schema's names; for a file without
    a header, the field positions (0, 1, ...) up to the widest row; for JSON lines, the keys of
    every object in order of first appearance (one pass over the file; with `json_keys`, the
    first that many, read no further than it takes to find them; with `json_first_row`, the
    first object's)."""
    path = Path(path)
    if fmt == "hf":
        return list(open_hf_dataset(str(path), split).column_names)
    if fmt == "parquet":
        return list(_parquet_file(path).schema_arrow.names)
    if fmt == "jsonl":
        seen: dict[str, None] = {}
        for item in _jsonl_rows(path):
            if isinstance(item, Row):
                seen.update(dict.fromkeys(item.values))
                if json_first_row:
                    break
                if json_keys is not None and len(seen) >= json_keys:
                    return list(seen)[:json_keys]
        return list(seen)
    if header:
        return _header(path, fmt)
    rows = _csv_rows(path, False) if fmt == "csv" else _tsv_rows(path, False)
    width = max((len(item.values) for item in rows if isinstance(item, Row)), default=0)
    return list(range(width))


def _header(path: Path, fmt: str) -> list[str]:
    """The header of a csv / tsv file (already checked to be readable by the reader)."""
    with _open(path) as f:
        first = next(numbered_lines(f), None)
    if first is None:
        return []
    text = _eol(first[2].decode("utf-8", "replace"))
    if fmt == "csv":
        return next(csv.reader([text]), [])
    return text.split("\t")


# --- format and the readers -----------------------------------------------------------------------


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
    check_regular(path)
    if fmt in FILE_FORMATS and path.is_dir():
        raise InputError(
            f"{path} is a directory, but --format {fmt} reads one file "
            "(a dataset saved with save_to_disk is --format hf)"
        )
    return fmt or detect_format(path)


_NOT_REGULAR = {
    stat.S_IFIFO: "a pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_regular(path: Path) -> None:
    """Refuse an input that exists but is neither a regular file nor a directory (a pipe such
    as `<(cat f.tsv)`, /dev/zero, a socket): it is read more than once (hashed, counted, then
    read row by row), which a stream cannot give, and opening a pipe waits for a writer."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreadable: the caller's open says so
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "not a file")
    raise InputError(
        f"{path} is not a regular file ({kind}): kdaug reads an input more than once (to hash "
        "and count it, then its rows), which a stream cannot give; save it to a file first"
    )


def _open(path: Path) -> BinaryIO:
    check_regular(path)
    try:
        return open(path, "rb")  # noqa: SIM115 (the callers close it)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def numbered_lines(f: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, bytes skipped at its start, the line) for each line of `f`, cut at
    b"\\n" only (a "\\r" before it stays, a lone "\\r" is data); a UTF-8 BOM is skipped."""
    for ln, line in enumerate(f, 1):
        if ln == 1 and line.startswith(_BOM):
            yield ln, len(_BOM), line[len(_BOM) :]
        else:
            yield ln, 0, line


def not_utf8(line: bytes, exc: UnicodeDecodeError, ln: int, skipped: int) -> str:
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


def _tsv_rows(
    path: Path, header: bool, names: tuple[str, ...] | None = None, select: Select | None = None
) -> Iterator[Row | RowReject]:
    """GLUE tsv: one row a line, fields cut at tabs, no quoting (sentences contain quote
    characters; they are read verbatim)."""
    with _open(path) as f:
        lines = numbered_lines(f)
        columns = list(names) if names else None
        if header:
            first = next(lines, None)
            if first is None:
                return
            ln, skipped, line = first
            try:
                columns = _eol(line.decode("utf-8")).split("\t")
            except UnicodeDecodeError as exc:
                reason = not_utf8(line, exc, ln, skipped)
                raise InputError(f"cannot read the header of {path}: {reason}") from None
            if select:
                select(columns)
        for n, (ln, skipped, line) in enumerate(lines):
            try:
                text = _eol(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                reason = not_utf8(line, exc, ln, skipped)
                yield RowReject(n, reason, {"line": _preview(line)}, line=ln)
                continue
            if not text:
                yield RowReject(n, "blank line", line=ln, blank=True)
                continue
            yield _fields_row(n, ln, text.split("\t"), columns, header)


_END = object()


def _fields_row(
    n: int, ln: int, fields: list[str], columns: list[str] | None, header: bool
) -> Row | RowReject:
    """One delimited row, its fields by column name (or by index, with no names to go by), or a
    RowReject when its field count differs from the header's (or the names')."""
    if columns is None:
        return Row(n, ln, dict(enumerate(fields)))
    if len(fields) != len(columns):
        counted = "the header has" if header else "expected"
        reason = f"row has {len(fields)} fields, {counted} {len(columns)}"
        return RowReject(n, reason, {"fields": fields}, line=ln, blank=not fields)
    return Row(n, ln, dict(zip(columns, fields, strict=True)))


def _csv_rows(
    path: Path, header: bool, names: tuple[str, ...] | None = None, select: Select | None = None
) -> Iterator[Row | RowReject]:
    """csv with quoting (quoted fields may span lines). Each line is decoded on its own; a
    record with a line that is not UTF-8 is rejected whole."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _open(path) as f:
        taken: list[tuple[int, str | None, bytes]] = []  # the current record's lines

        def feed() -> Iterator[str]:
            for ln, skipped, line in numbered_lines(f):
                try:
                    text, bad = line.decode("utf-8"), None
                except UnicodeDecodeError as exc:
                    text = line.decode("utf-8", "surrogateescape")  # keeps the line's structure
                    bad = not_utf8(line, exc, ln, skipped)
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

        columns = list(names) if names else None
        if header:
            columns, bad = take()
            if columns is _END:
                return
            if bad:
                raise InputError(f"cannot read the header of {path}: {bad}")
            if select:
                select(columns)
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
                yield RowReject(n, bad, {"line": _preview(data)}, line=ln)
            else:
                yield _fields_row(n, ln, fields, columns, header)
            n += 1


def _jsonl_rows(path: Path) -> Iterator[Row | RowReject]:
    """One JSON object a line. Unreadable lines (not UTF-8, invalid JSON, nested too deeply,
    an integer of more digits than Python converts) are rejected one by one."""
    with _open(path) as f:
        for n, (ln, skipped, line) in enumerate(numbered_lines(f)):
            if not line.strip():
                yield RowReject(n, "blank line", line=ln, blank=True)
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                reason = not_utf8(line, exc, ln, skipped)
            except RecursionError:
                reason = "invalid JSON: nested too deeply"
            except json.JSONDecodeError as exc:
                reason = f"invalid JSON: {exc}"
            except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
                reason = f"unreadable JSON value: {exc}"
            else:
                if isinstance(obj, dict):
                    yield Row(n, ln, obj)
                else:
                    kind = type(obj).__name__
                    yield RowReject(n, f"JSON line is a {kind}, not an object", line=ln)
                continue
            yield RowReject(n, reason, {"line": _preview(line)}, line=ln)


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(f"cannot read Parquet file {path}: {one_line(exc)}") from None


def _parquet_rows(path: Path, select: Select | None = None) -> Iterator[Row]:
    import pyarrow as pa

    pf = _parquet_file(path)
    have = list(pf.schema_arrow.names)
    wanted = select(have) if select else have
    n = 0
    try:
        for batch in pf.iter_batches(batch_size=4096, columns=wanted):
            for raw in _arrow_rows(batch):
                yield Row(n, None, raw)
                n += 1
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet file {path}: {one_line(exc)}") from None


def _arrow_rows(batch) -> list[dict]:
    """The rows of an Arrow batch or table; a string that is not UTF-8 becomes an Undecodable
    value (a reader of records rejects its row) instead of failing the whole batch."""
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
            values.append(Undecodable(exc))
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
        raise InputError(f"cannot open Hugging Face dataset {name!r}: {one_line(exc)}") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise InputError(f"{name}: no split {split!r}; it has {sorted(ds)} (use --split)")
        ds = ds[split]
    return ds


def _hf_rows(ds, select: Select | None = None) -> Iterator[Row]:
    have = list(ds.column_names)
    wanted = select(have) if select else have
    n = 0
    for table in ds.select_columns(wanted).with_format("arrow").iter(batch_size=4096):
        for raw in _arrow_rows(table):
            yield Row(n, None, raw)
            n += 1


def shard_features(schema: Any) -> dict[str, Any]:
    """The `datasets` features in a Parquet schema's metadata, as `datasets` writes them under
    the `huggingface` key ({} when it has none: shards of an older kdaug, or other Parquet
    files)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        features = json.loads(raw.decode("utf-8"))["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return {}
    return features if isinstance(features, dict) else {}


def class_names(schema: Any) -> tuple[str, ...] | None:
    """The ClassLabel names of a Parquet `label` column, or None when it is not a ClassLabel."""
    label = shard_features(schema).get("label")
    if isinstance(label, dict) and label.get("_type") == "ClassLabel":
        return tuple(label.get("names") or ())
    return None


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
            for chunk in file_chunks(fh):
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
