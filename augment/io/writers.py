"""Write variants to Parquet (atomically: a temporary name, renamed when complete) and rejects
to JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

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


class ShardWriter:
    """Parquet writer that appends row groups to `path.tmp` and renames it to `path` on close,
    after an fsync, so a file under its final name is always complete and durable."""

    def __init__(self, path: str | Path, row_group_rows: int = 8192) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self.tmp.unlink(missing_ok=True)


def write_rejects(path: str | Path, rejects: Iterable[Reject]) -> int:
    """Rejected rows with their reasons, one JSON object a line (atomic, like the shards)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rejects:
            f.write(json.dumps(r.to_row(), ensure_ascii=False) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n
