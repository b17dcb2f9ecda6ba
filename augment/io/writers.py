"""Write variants to Parquet (atomically: a temporary name, renamed when complete), rejects to
JSON lines, and exports to TSV / JSON lines / Parquet files (GLUE's layouts for the TinyBERT
scripts, or a generic one)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from augment.io.layout import REPLACEMENT_TYPE, ShardLayout
from augment.records import Reject, Variant
from kdaug.files import fsync_file, publish, temp_path
from kdaug.tasks import GLUE_TASKS, find_task
from kdaug.terminal import json_line

# The schema of shards written before the layout had a version (every column nullable, string
# labels, text_b present for single texts too); still read by export, inspect and distill.
VARIANT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("variant", pa.int32()),
        ("text_a", pa.string()),
        ("text_b", pa.string()),
        ("label", pa.string()),
        ("replacements", pa.list_(REPLACEMENT_TYPE)),
    ]
)
Passthrough = dict[str, str | None] | None


def variants_table(
    variants: Iterable[Variant | tuple[Variant, Passthrough]], layout: ShardLayout | None = None
) -> pa.Table:
    """A table of `variants` (each alone, or with its record's pass-through values) in the
    columns of `layout` (None: the unversioned VARIANT_SCHEMA)."""
    schema = VARIANT_SCHEMA if layout is None else layout.arrow_schema()
    cols: dict[str, list] = {name: [] for name in schema.names}
    for item in variants:
        v, extra = item if isinstance(item, tuple) else (item, None)
        cols["id"].append(v.id)
        cols["variant"].append(v.variant)
        cols["text_a"].append(v.text_a)
        if "text_b" in cols:
            cols["text_b"].append(v.text_b)
        if "label" in cols:
            cols["label"].append(v.label if layout is None else layout.encode_label(v.label))
        cols["replacements"].append([asdict(r) for r in v.replacements])
        if "passthrough" in cols:
            extra = extra or {}
            cols["passthrough"].append({n: extra.get(n) for n in layout.passthrough})
    return pa.table(cols, schema=schema)


class ShardWriter:
    """Parquet writer that appends row groups to `temp_path(path)` and renames it to `path` on
    close, after an fsync, so a file under its final name is always complete and durable.
    `layout`: the build's shard columns (None: the unversioned VARIANT_SCHEMA)."""

    def __init__(
        self, path: str | Path, row_group_rows: int = 8192, layout: ShardLayout | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        self.layout = layout
        schema = VARIANT_SCHEMA if layout is None else layout.arrow_schema()
        self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self._pending: list[tuple[Variant, Passthrough]] = []
        self.row_group_rows = row_group_rows
        self.rows = 0

    def write(self, variants: Iterable[Variant], passthrough: Passthrough = None) -> None:
        """Add one record's variants; `passthrough`: that record's other input columns."""
        self._pending.extend((v, passthrough) for v in variants)
        if len(self._pending) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(variants_table(self._pending, self.layout))
            self.rows += len(self._pending)
            self._pending = []

    def close(self, publish_file: bool = True) -> Path:
        """Finish the file and publish it (the path); with `publish_file` False, leave it
        fsynced under its temporary name for the caller to publish (the temporary path)."""
        self._flush()
        self._writer.close()
        if not publish_file:
            fsync_file(self.tmp)
            return self.tmp
        publish(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


def write_rejects(path: str | Path, rejects: Iterable[Reject], publish_file: bool = True) -> int:
    """Rejected rows with their reasons, one JSON object a line (atomic, like the shards; with
    `publish_file` False, left fsynced at `temp_path(path)` for the caller to publish)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rejects:
            f.write(json_line(r.to_row()) + "\n")
            n += 1
    if publish_file:
        publish(tmp, path)
    else:
        fsync_file(tmp)
    return n


LABEL_KEYS = ("label", "inherited_label")  # written through the label formatter
_UNSAFE = re.compile(r"[\t\r\n]+")


def glue_layout(task: str, pair: bool) -> tuple[list[str] | None, list[str]]:
    """The GLUE layout of `task` (the registry's, kdaug.tasks; `export_value` reads its keys). A
    layout that cannot hold the build's texts (a single-text task for pairs, which would drop
    text_b, or a pair task for single texts) is refused."""
    found = find_task(task)
    if found is None or found.export is None:
        known = sorted(name for name, t in GLUE_TASKS.items() if t.export)
        raise ValueError(f"no GLUE layout for task {task!r}; choose from {known}")
    header, keys = found.export
    layout = (list(header) if header is not None else None, list(keys))
    if ("b" in keys) != pair:
        has, needs = ("pairs", "single texts") if pair else ("single texts", "pairs")
        raise ValueError(
            f"the {task} layout holds {needs} but this build has {has}: choose a task "
            "with the build's shape, or --layout generic"
        )
    return layout


def generic_layout(
    pair: bool, has_label: bool, passthrough: Iterable[str] = (), extras: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Every column of a build: id, variant, text_a[, text_b][, label], the `extras`
    (inherited_label, teacher_logits), replacements, then each pass-through column under its
    input name ("passthrough.NAME" where that name is taken)."""
    cols = [("id", "id"), ("variant", "variant"), ("text_a", "a")]
    cols += [("text_b", "b")] * pair + [("label", "label")] * has_label
    cols += [(e, e) for e in extras] + [("replacements", "replacements")]
    taken = {name for name, _ in cols}
    cols += [(n if n not in taken else f"passthrough.{n}", f"pt:{n}") for n in passthrough]
    return [name for name, _ in cols], [key for _, key in cols]


def tsv_layout(task: str | None, pair: bool) -> tuple[list[str] | None, list[str]]:
    """The GLUE layout of `task`, else the generic one of a build without pass-through columns."""
    return glue_layout(task, pair) if task else generic_layout(pair, True)


def export_value(key: str, row: dict[str, Any], index: int) -> Any:
    """The value of one layout key for one shard row (`index`: its running row number)."""
    if key in ("a", "b"):
        return row.get(f"text_{key}")
    if key == "index":
        return index
    if key == "":
        return ""
    if key[0] in "=~":
        name, _, fallback = key[1:].partition("|")
        value = (row.get("passthrough") or {}).get(name)
        if key[0] == "~" and row["variant"] != 0:
            return ""
        if value is None and fallback:
            return export_value(fallback, row, index)
        return value
    if key.startswith("pt:"):
        return (row.get("passthrough") or {}).get(key[3:])
    if key == "replacements":
        return row.get("replacements") or []
    return row.get(key)


def _plain_label(value: Any) -> str:
    return "" if value is None else str(value)


class _AtomicExport:
    """A file written under a temporary name next to `path`, which `close` fsyncs and renames
    onto `path`; `abort` (or leaving a `with` block by an exception) removes it, so `path` is
    either the old file or the complete new one."""

    def _start(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        self.rows = self.changed_rows = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if exc_type is not None:
            self.abort()

    def _close_file(self) -> None:
        self._f.close()

    def close(self) -> Path:
        """Make the file durable under its final name (the temporary file is removed if that
        fails)."""
        try:
            self._close_file()
            publish(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Drop what was written; `path` is left as it was."""
        try:
            self._close_file()
        except (OSError, pa.ArrowException):
            pass  # a failed flush of data that is being thrown away
        finally:
            self.tmp.unlink(missing_ok=True)


class TsvExportWriter(_AtomicExport):
    """Unquoted TSV (GLUE's convention): every character is written as it is, so readers with
    `quoting=csv.QUOTE_NONE` (or TinyBERT's `quotechar=None`) get the exact text back. Tabs and
    line breaks cannot be represented and become one space; `changed_rows` counts such rows.

    `layout`: (header or None, keys), default `tsv_layout(task, pair)`; `label_text` writes a
    stored label (a class id, a score) as the text of the task's GLUE files. Written atomically
    (see `_AtomicExport`)."""

    def __init__(
        self,
        path: str | Path,
        task: str | None,
        pair: bool,
        *,
        layout: tuple[list[str] | None, list[str]] | None = None,
        label_text: Callable[[Any], str] = _plain_label,
    ) -> None:
        self.header, self.keys = layout or tsv_layout(task, pair)
        self.label_text = label_text
        self._start(path)
        self._f = open(self.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
        try:
            if self.header:
                self._f.write("\t".join(self.header) + "\n")
        except BaseException:
            self.abort()
            raise

    def _text(self, key: str, value: Any) -> str:
        if key in LABEL_KEYS:
            return self.label_text(value)
        if value is None:
            return ""
        if isinstance(value, (list, dict)):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows with the shard columns (id, variant, text_a[, text_b][, label], ...)."""
        for row in rows:
            fields = [self._text(k, export_value(k, row, self.rows)) for k in self.keys]
            clean = [_UNSAFE.sub(" ", f) for f in fields]
            self.changed_rows += clean != fields
            self._f.write("\t".join(clean) + "\n")
            self.rows += 1


class JsonlExportWriter(_AtomicExport):
    """One JSON object a line with the columns of `layout` (generic); values as the shards hold
    them (a class id, a score, the list of replacements), text exact (nothing is replaced)."""

    def __init__(self, path: str | Path, layout: tuple[list[str], list[str]]) -> None:
        self.header, self.keys = layout
        self._start(path)
        self._f = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 (closed below)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            obj = {
                n: export_value(k, row, self.rows)
                for n, k in zip(self.header, self.keys, strict=True)
            }
            self._f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self.rows += 1


class ParquetExportWriter(_AtomicExport):
    """One Parquet file with the shards' columns (nested as in the shards) and `schema`'s extra
    columns; `schema` carries the `datasets` features, so `load_dataset("parquet", ...)` reads
    the labels as a ClassLabel."""

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self.schema = schema
        self._start(path)
        self._f = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if rows:
            self._f.write_table(pa.Table.from_pylist(rows, schema=self.schema))
            self.rows += len(rows)
