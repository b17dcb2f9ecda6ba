"""Write variants to Parquet (atomically: a temporary name, renamed when complete), rejects to
JSON lines, and exports to TSV files that the TinyBERT scripts read."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from augment.records import Reject, Variant

REPLACEMENT_TYPE = pa.struct(
    [
        ("field", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("original", pa.string()),
        ("replacement", pa.string()),
        ("source", pa.string()),
        ("rank", pa.int32()),
    ]
)
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


def variants_table(variants: Iterable[Variant]) -> pa.Table:
    cols: dict[str, list] = {name: [] for name in VARIANT_SCHEMA.names}
    for v in variants:
        cols["id"].append(v.id)
        cols["variant"].append(v.variant)
        cols["text_a"].append(v.text_a)
        cols["text_b"].append(v.text_b)
        cols["label"].append(v.label)
        cols["replacements"].append([asdict(r) for r in v.replacements])
    return pa.table(cols, schema=VARIANT_SCHEMA)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# kdaug's temporary files: `.NAME.kdaug-PID.tmp` next to NAME. The marker is what lets a build
# clean up its own leftovers without touching anyone else's `*.tmp` files.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.kdaug-(?P<pid>\d+)\.tmp$")


def temp_path(path: Path) -> Path:
    """A temporary name next to `path`, unique per process (two writers never share one) and
    marked as kdaug's (hidden, `.kdaug-PID.tmp`), so that only kdaug's leftovers are removed."""
    return path.with_name(f".{path.name}.kdaug-{os.getpid()}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether `name` is one of kdaug's temporary names (see `temp_path`)."""
    return TEMP_NAME.match(name) is not None


def publish(tmp: Path, path: Path) -> None:
    """fsync `tmp`, rename it to `path` and fsync the directory: `path` is then complete."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Replace `path` by the JSON of `obj`; readers see the old file or the new, never a mix."""
    path = Path(path)
    tmp = temp_path(path)
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    publish(tmp, path)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ShardWriter:
    """Parquet writer that appends row groups to `temp_path(path)` and renames it to `path` on
    close, after an fsync, so a file under its final name is always complete and durable."""

    def __init__(self, path: str | Path, row_group_rows: int = 8192) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        self._writer = pq.ParquetWriter(self.tmp, VARIANT_SCHEMA, compression="zstd")
        self._pending: list[Variant] = []
        self.row_group_rows = row_group_rows
        self.rows = 0

    def write(self, variants: Iterable[Variant]) -> None:
        self._pending.extend(variants)
        if len(self._pending) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(variants_table(self._pending))
            self.rows += len(self._pending)
            self._pending = []

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        publish(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


def write_rejects(path: str | Path, rejects: Iterable[Reject]) -> int:
    """Rejected rows with their reasons, one JSON object a line (atomic, like the shards)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rejects:
            f.write(json.dumps(r.to_row(), ensure_ascii=False) + "\n")
            n += 1
    publish(tmp, path)
    return n


# GLUE tsv layouts, as the TinyBERT task processors index them: (header or None, column keys);
# keys are a / b (texts), label, id (record id), index (running row number) or "" (empty).
_PAIR4 = (["index", "sentence1", "sentence2", "label"], ["index", "a", "b", "label"])
GLUE_LAYOUTS: dict[str, tuple[list[str] | None, list[str]]] = {
    "cola": (None, ["id", "label", "", "a"]),
    "sst2": (["sentence", "label"], ["a", "label"]),
    "mrpc": (
        ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
        ["label", "id", "id", "a", "b"],
    ),
    "stsb": (
        [
            "index",
            "genre",
            "filename",
            "year",
            "old_index",
            "source1",
            "source2",
            "sentence1",
            "sentence2",
            "score",
        ],
        ["index", "", "", "", "", "", "", "a", "b", "label"],
    ),
    "qqp": (
        ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
        ["id", "", "", "a", "b", "label"],
    ),
    "mnli": (
        [
            "index",
            "promptID",
            "pairID",
            "genre",
            "sentence1_binary_parse",
            "sentence2_binary_parse",
            "sentence1_parse",
            "sentence2_parse",
            "sentence1",
            "sentence2",
            "label1",
            "gold_label",
        ],
        ["index", "", "id", "", "", "", "", "", "a", "b", "label", "label"],
    ),
    "qnli": (["index", "question", "sentence", "label"], ["index", "a", "b", "label"]),
    "rte": _PAIR4,
    "wnli": _PAIR4,
}
_UNSAFE = re.compile(r"[\t\r\n]+")


def tsv_layout(task: str | None, pair: bool) -> tuple[list[str] | None, list[str]]:
    """The GLUE layout of `task`, else a generic one with a header. A layout that cannot hold
    the build's texts (a single-text task for pairs, which would drop text_b, or a pair task for
    single texts) is refused."""
    if task:
        key = task.lower().replace("-", "")
        if key not in GLUE_LAYOUTS:
            raise ValueError(f"no TSV layout for task {task!r}; choose from {sorted(GLUE_LAYOUTS)}")
        layout = GLUE_LAYOUTS[key]
        if ("b" in layout[1]) != pair:
            has, needs = ("pairs", "single texts") if pair else ("single texts", "pairs")
            raise ValueError(
                f"the {task} layout holds {needs} but this build has {has}: choose a task "
                "with the build's shape, or --task none for the generic layout"
            )
        return layout
    keys = ["id", "variant", "a", "b", "label"] if pair else ["id", "variant", "a", "label"]
    names = {"a": "text_a", "b": "text_b"}
    return [names.get(k, k) for k in keys], keys


class TsvExportWriter:
    """Unquoted TSV (GLUE's convention): every character is written as it is, so readers with
    `quoting=csv.QUOTE_NONE` (or TinyBERT's `quotechar=None`) get the exact text back. Tabs and
    line breaks cannot be represented and become one space; `changed_rows` counts such rows.

    Rows go to a temporary file next to `path`, which `close` fsyncs and renames onto `path`;
    `abort` (or leaving a `with` block by an exception) removes it, so `path` is either the old
    file or the complete new one."""

    def __init__(self, path: str | Path, task: str | None, pair: bool) -> None:
        self.header, self.keys = tsv_layout(task, pair)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temp_path(self.path)
        self._f = open(self.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
        self.rows = self.changed_rows = 0
        try:
            if self.header:
                self._f.write("\t".join(self.header) + "\n")
        except BaseException:
            self.abort()
            raise

    def __enter__(self) -> TsvExportWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if exc_type is not None:
            self.abort()

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        """Rows with the shard columns (id, variant, text_a, text_b, label)."""
        for row in rows:
            values = {
                "a": row["text_a"],
                "b": row["text_b"],
                "label": row["label"],
                "id": row["id"],
                "variant": row["variant"],
                "index": self.rows,
                "": "",
            }
            fields = ["" if values[k] is None else str(values[k]) for k in self.keys]
            clean = [_UNSAFE.sub(" ", f) for f in fields]
            self.changed_rows += clean != fields
            self._f.write("\t".join(clean) + "\n")
            self.rows += 1

    def close(self) -> Path:
        """Make the file durable under its final name (the temporary file is removed if that
        fails)."""
        try:
            self._f.close()
            publish(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Drop what was written; `path` is left as it was."""
        try:
            self._f.close()
        except OSError:
            pass  # a failed flush of data that is being thrown away
        finally:
            self.tmp.unlink(missing_ok=True)
