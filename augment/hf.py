"""Augment a Hugging Face `datasets` dataset from Python: each row becomes its variants (the
original first), with the dataset's own columns and features, plus `variant` and
`replacements`. The same rows, config and seed give the same variants as `kdaug augment`,
whatever the batch size (each record is seeded from the seed and its id: the id column, else the
row number).

    from datasets import load_dataset
    from augment import AugmentConfig, augment_dataset

    ds = load_dataset("glue", "sst2", split="train")
    aug = augment_dataset(ds, AugmentConfig(mlm="default", n=4), task="sst2")
    aug = aug.map(lambda b: tok(b["sentence"], truncation=True), batched=True)

`VariantExpander` is the same thing as a `Dataset.map(batched=True, with_indices=True)` function.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, replace
from typing import Any, Literal

from augment.config import AugmentConfig
from augment.io.readers import Columns, columns_for, hub_columns, missing_columns, to_record
from augment.records import Record, Reject
from kdaug.errors import InputError

log = logging.getLogger(__name__)

ADDED_COLUMNS = ("variant", "replacements")
OnReject = Literal["raise", "drop"]


def dataset_columns(
    column_names: list[str],
    task: str | None = None,
    text: str | None = None,
    text_b: str | None = None,
    label: str | None = None,
    id: str | None = None,
) -> Columns:
    """Where the fields of a dataset with `column_names` are: as `kdaug augment` maps them
    (task preset, then the named columns), except that a task preset whose columns the dataset
    lacks takes the hub GLUE config's names (`sentence1`, `label`, `idx`, ...)."""
    names = set(column_names)
    cols = hub_columns(columns_for(task, text, text_b, label, id), names)
    if cols.id is not None and id is None and cols.id not in names:
        cols = replace(cols, id=None)  # a preset's id column the dataset lacks: row numbers
    # a preset's label column may be absent (a test split), a label column named here may not
    missing = missing_columns(cols, names, label_optional=bool(cols.task) and label is None)
    if missing:
        raise InputError(
            f"column(s) {missing} not found; the dataset has {list(column_names)} (pass "
            "text_column=, text_b_column=, label_column=, id_column=, or task=)"
        )
    return cols


def replacement_features():
    import datasets

    return [
        {
            "field": datasets.Value("string"),
            "start": datasets.Value("int32"),
            "end": datasets.Value("int32"),
            "original": datasets.Value("string"),
            "replacement": datasets.Value("string"),
            "source": datasets.Value("string"),
            "rank": datasets.Value("int32"),
        }
    ]


class VariantExpander:
    """A batched `Dataset.map` function (`batched=True, with_indices=True`, removing the input
    columns) that expands each row into its variants: the row's columns as they were, the text
    columns replaced, plus `variant` and `replacements`.

    A row that cannot be a record (an empty text, a label outside the task's set) raises a
    one-line InputError, or with `on_reject="drop"` is left out with a warning and kept in
    `rejects`. The Augmenter is loaded on first use (and again in each `num_proc` process:
    pickling keeps only the settings), with `threads` torch threads on CPU when given."""

    def __init__(
        self,
        config: AugmentConfig | None = None,
        columns: Columns | None = None,
        *,
        augmenter=None,
        on_reject: OnReject = "raise",
        threads: int | None = None,
    ) -> None:
        if on_reject not in ("raise", "drop"):
            raise ValueError(f"on_reject must be 'raise' or 'drop', not {on_reject!r}")
        self.config = config or (augmenter.config if augmenter is not None else AugmentConfig())
        self.columns = columns or Columns()
        self.on_reject = on_reject
        self.threads = threads
        self.rejects: list[Reject] = []
        self._augmenter = augmenter

    @property
    def augmenter(self):
        if self._augmenter is None:
            from augment.build.shard import load_augmenter

            config = self.config
            self._augmenter, _ = load_augmenter(config.model_dump(), config.device, self.threads)
        return self._augmenter

    def __getstate__(self) -> dict[str, Any]:
        # what `datasets` hashes for its cache and what `num_proc` workers receive
        return {
            "config": self.config.model_dump(),
            "columns": asdict(self.columns),
            "on_reject": self.on_reject,
            "threads": self.threads,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(
            AugmentConfig(**state["config"]),
            Columns(**state["columns"]),
            on_reject=state["on_reject"],
            threads=state.get("threads"),
        )

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        names = list(batch)
        rows = [{k: batch[k][i] for k in names} for i in range(len(indices))]
        records: list[Record] = []
        kept: list[dict[str, Any]] = []
        for index, raw in zip(indices, rows, strict=True):
            item = to_record(index, raw, self.columns)
            if isinstance(item, Reject):
                self._reject(item)
            else:
                records.append(item)
                kept.append(raw)
        out: dict[str, list] = {k: [] for k in [*names, *ADDED_COLUMNS]}
        size = self.config.batch_size
        cols = self.columns
        for start in range(0, len(records), size):
            part = self.augmenter.augment(records[start : start + size])
            for raw, variants in zip(kept[start : start + size], part, strict=True):
                for v in variants:
                    row = {**raw, cols.text_a: v.text_a}
                    if cols.text_b is not None:
                        row[cols.text_b] = v.text_b
                    for k in names:
                        out[k].append(row[k])
                    out["variant"].append(v.variant)
                    out["replacements"].append([asdict(r) for r in v.replacements])
        return out

    def _reject(self, r: Reject) -> None:
        if self.on_reject == "raise":
            raise InputError(
                f"row {r.row}: {r.reason} (fix or filter out such rows, or pass "
                "on_reject='drop' to leave them out with a warning)"
            )
        self.rejects.append(r)
        log.warning("augment_dataset: row %d left out: %s", r.row, r.reason)


def augment_dataset(
    ds,
    config: AugmentConfig | None = None,
    *,
    task: str | None = None,
    text_column: str | None = None,
    text_b_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    augmenter=None,
    on_reject: OnReject = "raise",
    batch_size: int = 1000,
    num_proc: int | None = None,
):
    """A `datasets.Dataset` (or IterableDataset, lazily) of the variants of every row of `ds`:
    its columns and features, text columns replaced, plus `variant` (0 = the original) and
    `replacements`. Columns are mapped as `kdaug augment` maps them (`task` presets, or the
    columns named; a task's hub GLUE names are recognised). `batch_size` rows go to each map
    call; it does not change the output. `augmenter`: an Augmenter already loaded.
    `num_proc` > 1: that many worker processes, started with spawn (a script calling this needs
    the `if __name__ == "__main__":` guard), each loading its own models and splitting the CPU
    cores; the output is the same as with one process.

        ds = load_dataset("glue", "sst2", split="train")
        aug = augment_dataset(ds, AugmentConfig(mlm="default", n=4), task="sst2")
        aug[0]["sentence"], aug[1]["sentence"], aug[1]["replacements"]
    """
    import datasets

    if isinstance(ds, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        raise InputError(f"pass one split of the dataset (e.g. ds['train']), not {sorted(ds)}")
    names = list(ds.column_names or [])
    clash = [c for c in ADDED_COLUMNS if c in names]
    if clash:
        raise InputError(
            f"the dataset already has column(s) {clash}, which the output adds: rename them "
            "first (ds.rename_column)"
        )
    cfg = config or (augmenter.config if augmenter is not None else AugmentConfig())
    cols = dataset_columns(names, task, text_column, text_b_column, label_column, id_column)
    if (num_proc is not None and num_proc <= 1) or isinstance(ds, datasets.IterableDataset):
        num_proc = None  # datasets starts a one-process pool for 1: no gain, the same output
    threads = None  # torch threads of each worker process: the cores shared out
    if num_proc and not cfg.device.startswith("cuda"):
        threads = max(1, (os.cpu_count() or 1) // num_proc)
    expander = VariantExpander(cfg, cols, augmenter=augmenter, on_reject=on_reject, threads=threads)
    features = None
    if ds.features is not None:
        features = datasets.Features(
            {
                **ds.features,
                "variant": datasets.Value("int32"),
                "replacements": replacement_features(),
            }
        )
    kwargs: dict[str, Any] = {
        "batched": True,
        "with_indices": True,
        "batch_size": batch_size,
        "remove_columns": names,
        "features": features,
    }
    if isinstance(ds, datasets.IterableDataset):
        return ds.map(expander, **kwargs)
    if augmenter is None:
        # loaded here: its errors come before any work, in one line
        augmenter = VariantExpander(cfg, cols).augmenter if num_proc else expander.augmenter
    fingerprint = _fingerprint(ds, cfg, cols, on_reject, augmenter)
    with spawned_workers() if num_proc else nullcontext():
        return ds.map(
            expander, num_proc=num_proc, new_fingerprint=fingerprint, desc="kdaug augment", **kwargs
        )


_START_METHOD = threading.Lock()


@contextmanager
def spawned_workers() -> Iterator[None]:
    """`Dataset.map(num_proc=...)` starts its workers with the default start method of
    `multiprocess`, fork on Linux: a forked worker deadlocks in torch once the parent has run
    torch's thread pool (loading the Augmenter does), and cannot use CUDA. Spawned workers start
    clean, as the builder's do; the previous start method is restored afterwards."""
    import multiprocess

    with _START_METHOD:
        before = multiprocess.get_start_method(allow_none=True)
        multiprocess.set_start_method("spawn", force=True)
        try:
            yield
        finally:
            multiprocess.set_start_method(before, force=True)


def _fingerprint(ds, cfg: AugmentConfig, cols: Columns, on_reject: str, aug) -> str:
    """What the output depends on (for `datasets`' cache): the input, the settings, the columns
    and the models (a local MLM folder by its files' sha256)."""
    from pathlib import Path

    from augment.candidates import quant

    mlm = getattr(aug, "mlm", None)
    model = None
    if mlm is not None and Path(mlm.path).is_dir():
        model = quant.files_fingerprint(mlm.path)
    what = {
        "input": getattr(ds, "_fingerprint", None),
        "config": cfg.fingerprint_dict(),
        "columns": asdict(cols),
        "on_reject": on_reject,
        "versions": aug.versions(),
        "mlm_files": model,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]
