"""Training and dev data: GLUE files (tsv/csv/jsonl) and kdaug shards, streamed into tokenised,
dynamically padded, length-grouped batches.

Shards are read a record batch at a time (pyarrow), never loaded whole. The order of an epoch is a
pure function of (seed, epoch), so a resumed run can skip to the exact batch it stopped at.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.tasks import TaskSpec
from kdaug import tables
from kdaug.errors import InputError
from kdaug.files import write_text_atomic
from kdaug.manifest import is_build, verified_shards
from kdaug.tables import RowReject
from kdaug.tasks import NO_LABEL

log = logging.getLogger(__name__)
TABLE_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json")
SHARD_EXTRAS = ("replacements", "passthrough")  # shard columns that training never reads


@dataclass(frozen=True)
class Example:
    """One text (pair) and its target; `key` is (file index, row index) for the logits cache."""

    text_a: str
    text_b: str | None
    label: int | float | None
    key: tuple[int, int]


def input_files(path: str | Path) -> list[Path]:
    """A kdaug build (its shards, once kdaug.manifest has verified the build is finished and
    every shard matches its sha256), a dir of Parquet files, or one data file."""
    p = Path(path)
    if is_build(p):
        return [shard.path for shard in verified_shards(p)]
    if p.is_dir():
        files = sorted((p / "data").glob("*.parquet")) or sorted(p.glob("*.parquet"))
        if not files:
            raise InputError(f"{p} holds no Parquet shards (expected {p}/data/part-*.parquet)")
        return files
    if not p.is_file():
        raise InputError(f"input not found: {p}")
    if p.suffix not in (".parquet", *TABLE_SUFFIXES):
        raise InputError(
            f"{p}: unsupported format; use .tsv, .csv, .jsonl, .parquet or a shard dir"
        )
    return [p]


def _pick(columns: list[str], names: tuple[str, ...], role: str, path: Path) -> str | None:
    for name in names:
        if name in columns:
            return name
    if role == "label" or not names:
        return None
    raise InputError(f"{path}: no {role} column (looked for {list(names)}; found {columns})")


class RejectLog:
    """The rows that a command's data files reject (kdaug.tables decides, as for `kdaug
    augment`): each file is reported once, as a one-line summary in the log, and its rejects
    are written to `path` (OUTPUT/rejects.jsonl, when the command has an output directory).
    A file whose every row is rejected is an error."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.files: dict[Path, tuple[int, list[RowReject]]] = {}  # file -> (rows, rejects)

    def account(self, f: Path, rows: int, rejects: list[RowReject]) -> None:
        """Record one complete pass over `f`: `rows` data rows, of which `rejects` were not
        used (later passes over the same file are not reported again)."""
        if f in self.files:
            return
        self.files[f] = (rows, rejects)
        if not rejects:
            return
        if self.path is not None:
            self._write()
        first = rejects[0]
        why = f"{first.where()}: {first.reason}"
        where = f"; see {self.path}" if self.path is not None else ""
        if len(rejects) == rows:
            raise InputError(f"{f.name}: all {rows} rows rejected ({why}){where}")
        log.warning("%s: %d of %d rows rejected (%s)%s", f.name, len(rejects), rows, why, where)

    def _write(self) -> None:
        lines = [
            json.dumps(
                {"file": str(f), "row": r.index, "line": r.line, "reason": r.reason, "raw": r.raw},
                ensure_ascii=False,
            )
            + "\n"
            for f, (_, rejects) in self.files.items()
            for r in rejects
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, "".join(lines))


class ExampleSource:
    """Rows of one or more files, as Examples of `task`; labels mapped to the task's ids. Rows
    that the table reader rejects are skipped and reported through `rejects`."""

    def __init__(self, path: str | Path, task: TaskSpec, rejects: RejectLog | None = None) -> None:
        self.path = Path(path)
        self.task = task
        self.files = input_files(path)
        self.rejects = rejects if rejects is not None else RejectLog()
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = sum(self.count_rows(f) for f in self.files)
        return self._len

    def count_rows(self, f: Path) -> int:
        """The rows of `f` that become examples."""
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(f).metadata.num_rows
        return sum(1 for _ in self._rows(f))

    def _columns(self, f: Path, columns: list[str]) -> tuple[str, str | None, str | None]:
        t = self.task
        if "text_a" in columns:  # kdaug shards name the fields text_a / text_b / label
            return "text_a", "text_b" if t.is_pair else None, "label"
        return (
            _pick(columns, t.text_a, "text", f),
            _pick(columns, t.text_b, "second text", f),
            _pick(columns, t.label, "label", f),
        )

    def _rows(self, f: Path) -> Iterator[dict[str, Any]]:
        if f.suffix == ".parquet":
            yield from self._shard_rows(f)
            return
        header = self.task.header  # the column names of a headerless file (CoLA)
        rows, rejects = 0, []
        for item in tables.read_rows(f, header=header is None, names=header):
            rows += 1
            if isinstance(item, RowReject):
                rejects.append(item)
            else:
                yield item.values
        self.rejects.account(f, rows, rejects)

    def _shard_rows(self, f: Path) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        # ClassLabel ids (kdaug shards, `datasets` exports) read as their names, so that a task
        # whose label order differs still maps them right; -1 (-1.0 for a kdaug score) is "no
        # label"
        schema = pq.ParquetFile(f).schema_arrow
        names = tables.class_names(schema)
        score = tables.shard_features(schema).get("label") == {
            "dtype": "float32",
            "_type": "Value",
        }
        wanted = [c for c in schema.names if c not in SHARD_EXTRAS]
        for item in tables.read_rows(f, "parquet", select=lambda _: wanted, error=InputError):
            row = item.values
            if names is not None or score:
                label = row.get("label")
                if label == NO_LABEL:
                    row["label"] = None
                elif names is not None and isinstance(label, int) and 0 <= label < len(names):
                    row["label"] = names[label]
            yield row

    def __iter__(self) -> Iterator[Example]:
        return self.iterate(range(len(self.files)))

    def iterate(self, file_order: Any) -> Iterator[Example]:
        """Examples file by file in `file_order` (indices into self.files)."""
        for fi in file_order:
            f = self.files[fi]
            cols: tuple[str, str | None, str | None] | None = None
            for ri, row in enumerate(self._rows(f)):
                if cols is None:
                    cols = self._columns(f, list(row))
                a, b, lab = cols
                raw = row.get(lab) if lab else None
                label = None if raw is None or raw == "" else self.task.label_id(raw)
                text_b = (row.get(b) or "") if b else None
                yield Example(str(row.get(a) or ""), text_b, label, (fi, ri))


@dataclass
class Batch:
    """Padded model inputs plus targets; `teacher_logits` comes from the cache when present."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    rows: torch.Tensor | None = None  # [B, 2] (file index, row index) of each example

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def inputs(self) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }

    def to(self, device: torch.device | str) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(*(move(getattr(self, k)) for k in self.__dataclass_fields__))  # type: ignore[arg-type]

    def select(self, start: int, stop: int) -> Batch:
        """Rows [start, stop), re-trimmed to their own longest sequence (dynamic padding)."""
        length = max(int(self.attention_mask[start:stop].sum(1).max()), 1)
        sub = {
            k: (None if v is None else v[start:stop])
            for k, v in ((k, getattr(self, k)) for k in self.__dataclass_fields__)
        }
        for k in ("input_ids", "attention_mask", "token_type_ids"):
            sub[k] = sub[k][:, :length]
        return Batch(**sub)

    def split(self, parts: int) -> list[Batch]:
        """Contiguous, nearly equal parts (empty parts left out)."""
        bounds = np.linspace(0, len(self), parts + 1).round().astype(int)
        return [self.select(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


class BatchStream:
    """Length-grouped batches of a source: each window of `group_batches` batches is shuffled,
    sorted by length and cut into batches, whose order is then shuffled (training), or just sorted
    by length (evaluation)."""

    def __init__(
        self,
        source: ExampleSource,
        tokenizer: Any,
        max_length: int,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        group_batches: int = 50,
        logits: Any = None,
    ) -> None:
        self.source, self.tokenizer, self.max_length = source, tokenizer, max_length
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.window = batch_size * group_batches
        self.logits = logits  # a LogitsCache or None

    def __len__(self) -> int:
        return math.ceil(len(self.source) / self.batch_size)

    def with_logits(self, logits: Any) -> BatchStream:
        """The same stream, with cached teacher logits attached to every batch."""
        new = copy.copy(self)
        new.logits = logits
        return new

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The batches of `epoch`, skipping the first `start` (whole windows are skipped without
        tokenising)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = (
            rng.permutation(len(self.source.files))
            if self.shuffle
            else range(len(self.source.files))
        )
        done, chunk, w = 0, [], 0
        for ex in self.source.iterate(order):
            chunk.append(ex)
            if len(chunk) == self.window:
                yield from self._window(chunk, epoch, w, start - done)
                done, chunk, w = done + math.ceil(len(chunk) / self.batch_size), [], w + 1
        if chunk:
            yield from self._window(chunk, epoch, w, start - done)

    def _window(self, chunk: list[Example], epoch: int, w: int, skip: int) -> Iterator[Batch]:
        n_batches = math.ceil(len(chunk) / self.batch_size)
        if skip >= n_batches:
            return
        enc = self.tokenizer(
            [e.text_a for e in chunk],
            [e.text_b or "" for e in chunk] if chunk[0].text_b is not None else None,
            truncation=True,
            max_length=self.max_length,
        )
        lengths = np.array([len(x) for x in enc["input_ids"]])
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch, w])
            perm = rng.permutation(len(chunk))
            idx = perm[np.argsort(-lengths[perm], kind="stable")]
            batch_order = rng.permutation(n_batches)
        else:
            idx, batch_order = np.argsort(-lengths, kind="stable"), np.arange(n_batches)
        for b in batch_order[max(skip, 0) :]:
            rows = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield self._collate(
                [chunk[i] for i in rows], [enc[k] for k in ("input_ids", "token_type_ids")], rows
            )

    def _collate(self, exs: list[Example], enc: list[list[list[int]]], rows: np.ndarray) -> Batch:
        ids, types = enc
        length = max(len(ids[i]) for i in rows)
        input_ids = torch.zeros(len(rows), length, dtype=torch.long)
        input_ids.fill_(self.tokenizer.pad_token_id or 0)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        type_ids = torch.zeros(len(rows), length, dtype=torch.long)
        for j, i in enumerate(rows):
            n = len(ids[i])
            input_ids[j, :n] = torch.tensor(ids[i])
            mask[j, :n] = 1
            type_ids[j, :n] = torch.tensor(types[i])
        labels = None
        if all(e.label is not None for e in exs):
            dtype = torch.float if self.source.task.is_regression else torch.long
            labels = torch.tensor([e.label for e in exs], dtype=dtype)
        cached = None
        if self.logits is not None:
            cached = torch.from_numpy(np.stack([self.logits.lookup(*e.key) for e in exs]))
        keys = torch.tensor([e.key for e in exs], dtype=torch.long)
        return Batch(input_ids, mask, type_ids, labels, cached, keys)
