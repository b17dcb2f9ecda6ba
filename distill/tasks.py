"""The tasks distillation trains on: the registry's GLUE tasks (kdaug.tasks) with the paper's
per-stage epochs and learning rates, and custom tasks from column names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from kdaug import tasks as registry
from kdaug.errors import KdaugError


class TaskError(KdaugError):
    """An unknown task, or a custom task without the columns it needs."""


@dataclass(frozen=True)
class TaskSpec(registry.Task):
    """A registry task with its training settings (the paper's per-stage epochs and rates)."""

    intermediate_epochs: int = 20
    intermediate_lr: float = 5e-5
    prediction_epochs: int = 3
    prediction_lr: float = 3e-5

    @classmethod
    def of(cls, task: registry.Task, **training: Any) -> TaskSpec:
        return cls(**{f.name: getattr(task, f.name) for f in fields(registry.Task)}, **training)

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
        try:
            return registry.class_index(text, self.labels, self.file_labels)
        except ValueError:
            raise TaskError(
                f"task {self.name}: unknown label {text!r}; expected one of {self.labels}"
            ) from None


# The tasks of the paper, with the settings that differ from TaskSpec's defaults.
_TRAINING: dict[str, dict[str, Any]] = {
    "sst2": {},
    "mrpc": {},
    "stsb": {},
    "cola": {"intermediate_epochs": 50},
    "rte": {},
    "qnli": {"intermediate_epochs": 10},
    "qqp": {"intermediate_epochs": 10},
    "mnli": {"intermediate_epochs": 10},
}
TASKS: dict[str, TaskSpec] = {
    name: TaskSpec.of(registry.GLUE_TASKS[name], **settings) for name, settings in _TRAINING.items()
}


def custom_task(text_a: str, text_b: str | None, label: str, labels: list[str] | None) -> TaskSpec:
    """A task from column names; `labels` None means regression (one output, Pearson/Spearman)."""
    return TaskSpec.of(registry.custom_task(text_a, text_b, label, labels))


def get_task(name: str) -> TaskSpec:
    """Look a preset up by name (case-insensitive; GLUE folder spellings such as SST-2 work)."""
    key = registry.task_key(name)
    if key not in TASKS:
        raise TaskError(f"unknown task {name!r}; choose from {sorted(TASKS)} or 'custom'")
    return TASKS[key]
