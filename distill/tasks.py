"""GLUE task presets: columns, label order (as in Hugging Face `datasets`), metrics, lengths and
the paper's per-stage epochs and learning rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kdaug.errors import KdaugError


class TaskError(KdaugError):
    """An unknown task, or a custom task without the columns it needs."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: where its fields live in a file and how its labels and metrics work.

    Column settings are tuples of accepted names (GLUE tsv names first, then the names that
    Hugging Face `datasets` uses), so a GLUE tsv, a `datasets` export and kdaug shards all read.
    """

    name: str
    text_a: tuple[str, ...]
    text_b: tuple[str, ...] = ()
    label: tuple[str, ...] = ("label",)
    labels: tuple[str, ...] | None = None  # None: regression with one output
    aliases: dict[str, str] = field(default_factory=dict)  # raw file value -> label name
    metrics: tuple[str, ...] = ("accuracy",)
    primary: str = "accuracy"
    header: tuple[str, ...] | None = None  # column names of headerless files (CoLA)
    dev_files: tuple[str, ...] = ("dev.tsv",)
    intermediate_epochs: int = 20
    intermediate_lr: float = 5e-5
    prediction_epochs: int = 3
    prediction_lr: float = 3e-5

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return bool(self.text_b)

    @property
    def max_length(self) -> int:
        """The paper's lengths: 64 tokens for single sentences, 128 for pairs."""
        return 128 if self.is_pair else 64

    def label_id(self, raw: Any) -> int | float:
        """Map a raw label (a file string such as '1', 'entailment' or '3.8') to its target."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise TaskError(f"task {self.name}: a training or dev row has no label")
        text = str(raw).strip()
        if self.labels is None:
            try:
                return float(text)
            except ValueError:
                raise TaskError(f"task {self.name}: label {text!r} is not a number") from None
        name = self.aliases.get(text, text)
        if name in self.labels:
            return self.labels.index(name)
        if text.isdigit() and int(text) < len(self.labels):
            return int(text)
        raise TaskError(f"task {self.name}: unknown label {text!r}; expected one of {self.labels}")


def _binary(neg: str, pos: str) -> dict[str, str]:
    return {"0": neg, "1": pos}


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "sst2",
            ("sentence",),
            labels=("negative", "positive"),
            aliases=_binary("negative", "positive"),
        ),
        TaskSpec(
            "mrpc",
            ("#1 String", "sentence1"),
            ("#2 String", "sentence2"),
            ("Quality", "label"),
            labels=("not_equivalent", "equivalent"),
            aliases=_binary("not_equivalent", "equivalent"),
            metrics=("accuracy", "f1"),
            primary="f1",
        ),
        TaskSpec(
            "stsb",
            ("sentence1",),
            ("sentence2",),
            ("score", "label"),
            metrics=("pearson", "spearman"),
            primary="spearman",
        ),
        TaskSpec(
            "cola",
            ("sentence",),
            labels=("unacceptable", "acceptable"),
            aliases=_binary("unacceptable", "acceptable"),
            metrics=("mcc",),
            primary="mcc",
            header=("source", "label", "original_label", "sentence"),
            intermediate_epochs=50,
        ),
        TaskSpec(
            "rte",
            ("sentence1",),
            ("sentence2",),
            labels=("entailment", "not_entailment"),
        ),
        TaskSpec(
            "qnli",
            ("question",),
            ("sentence",),
            labels=("entailment", "not_entailment"),
            intermediate_epochs=10,
        ),
        TaskSpec(
            "qqp",
            ("question1",),
            ("question2",),
            ("is_duplicate", "label"),
            labels=("not_duplicate", "duplicate"),
            aliases=_binary("not_duplicate", "duplicate"),
            metrics=("accuracy", "f1"),
            primary="f1",
            intermediate_epochs=10,
        ),
        TaskSpec(
            "mnli",
            ("sentence1", "premise"),
            ("sentence2", "hypothesis"),
            ("gold_label", "label"),
            labels=("entailment", "neutral", "contradiction"),
            dev_files=("dev_matched.tsv", "dev_mismatched.tsv"),
            intermediate_epochs=10,
        ),
    )
}
TASK_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-mm": "mnli"}


def custom_task(text_a: str, text_b: str | None, label: str, labels: list[str] | None) -> TaskSpec:
    """A task from column names; `labels` None means regression (one output, Pearson/Spearman)."""
    if labels is None:
        metrics, primary = ("pearson", "spearman"), "spearman"
    elif len(labels) == 2:
        metrics, primary = ("accuracy", "f1"), "accuracy"
    else:
        metrics, primary = ("accuracy",), "accuracy"
    return TaskSpec(
        "custom",
        (text_a,),
        (text_b,) if text_b else (),
        (label,),
        labels=tuple(labels) if labels else None,
        metrics=metrics,
        primary=primary,
    )


def get_task(name: str) -> TaskSpec:
    """Look a preset up by name (case-insensitive; GLUE folder spellings such as SST-2 work)."""
    key = name.strip().lower()
    key = TASK_ALIASES.get(key, key)
    if key not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose from {sorted(TASKS)} or 'custom'")
    return TASKS[key]
