"""DistillConfig: every distillation and fine-tuning setting and its default, in one place.

Per-stage defaults come from the task preset (the paper's epochs and learning rates); a YAML file
and then command-line flags override them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from distill.tasks import TaskError, TaskSpec, custom_task, get_task
from kdaug.settings import Device, read_settings, validated

STAGES = ("finetune", "intermediate", "prediction")


class StageConfig(BaseModel):
    """One training stage: its budget, optimiser and batch settings."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(3, gt=0, description="passes over the training data")
    max_steps: int | None = Field(None, ge=1, description="cap on optimizer steps in this stage")
    lr: float = Field(3e-5, gt=0)
    warmup: float = Field(0.1, ge=0, lt=1, description="fraction of steps with linear warmup")
    schedule: Literal["linear", "constant"] = "linear"
    batch_size: int = Field(32, ge=1, description="examples per optimizer step, all GPUs together")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step per process")
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, ge=0, description="0 disables clipping")


class LossWeights(BaseModel):
    """Weights of the loss parts; a part with weight 0 is not computed."""

    model_config = ConfigDict(extra="forbid")

    attention: float = Field(1.0, ge=0, description="stage 1: attention-score MSE")
    hidden: float = Field(1.0, ge=0, description="stage 1: hidden-state MSE through W_h")
    embedding: float = Field(1.0, ge=0, description="stage 1: embedding MSE through W_e")
    soft: float = Field(1.0, ge=0, description="stage 2: soft cross-entropy (MSE for regression)")
    hard: float = Field(0.0, ge=0, description="stage 2: cross-entropy with the gold labels")
    cosine: float = Field(0.0, ge=0, description="stage 2: DistilBERT cosine loss, last layer")


class BiLSTMSettings(BaseModel):
    """The BiLSTM student (`--student bilstm`): its shape, word vectors and logit loss."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(150, ge=1, description="LSTM units per direction")
    layers: int = Field(1, ge=1, le=8, description="stacked BiLSTM layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="on embeddings, between layers, in the MLP")
    mlp_hidden: int = Field(200, ge=1, description="width of the ReLU layer of the classifier")
    embeddings: str = Field(
        "glove-6b-50d",
        description="glove-6b-50d, a GloVe/word2vec/KeyedVectors file, teacher (the teacher's "
        "input embeddings, a word's WordPiece rows averaged), or none",
    )
    embedding_dim: int = Field(50, ge=1, description="embedding width with embeddings: none")
    extra_words: int = Field(
        20000, ge=0, description="most frequent words of the vectors added to the training words"
    )
    loss: Literal["mse", "soft-ce"] = Field(
        "mse", description="logit MSE (Tang et al.) or soft cross-entropy at `temperature`"
    )


# the prediction stage of a BiLSTM trains from scratch: a larger step size and more passes
BILSTM_STAGE = {
    "epochs": 6,
    "lr": 1e-3,
    "warmup": 0.0,
    "schedule": "linear",
    "batch_size": 50,
    "weight_decay": 0.0,
}


def _stage_defaults(task: TaskSpec) -> dict[str, dict[str, Any]]:
    return {
        "finetune": {"epochs": 3, "lr": 5e-5, "warmup": 0.1, "schedule": "linear"},
        "intermediate": {
            "epochs": task.intermediate_epochs,
            "lr": task.intermediate_lr,
            "warmup": 0.0,
            "schedule": "constant",
        },
        "prediction": {
            "epochs": task.prediction_epochs,
            "lr": task.prediction_lr,
            "warmup": 0.1,
            "schedule": "linear",
        },
    }


class DistillConfig(BaseModel):
    """Settings of `kdaug finetune-teacher` and `kdaug distill`."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="GLUE preset (sst2, mrpc, ...) or 'custom'")
    text_a: str | None = Field(None, description="custom task: first text column")
    text_b: str | None = Field(None, description="custom task: second text column, if any")
    label_column: str = Field("label", description="custom task: label column")
    labels: list[str] | None = Field(None, description="custom task: label names; none=regression")
    max_length: int | None = Field(None, ge=8, le=4096, description="default: 64 single, 128 pairs")

    layer_map: Literal["uniform", "top", "bottom"] | list[int] = Field(
        "uniform", description="g(m): student layer m learns from teacher layer g(m)"
    )
    temperature: float = Field(1.0, gt=0)
    weights: LossWeights = Field(default_factory=LossWeights)
    bilstm: BiLSTMSettings = Field(default_factory=BiLSTMSettings)
    finetune: StageConfig
    intermediate: StageConfig
    prediction: StageConfig

    seed: int = 42
    device: Device = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="autocast dtype on CUDA; auto = bf16 where supported, else fp16"
    )
    compile: bool = Field(False, description="torch.compile the trained model")
    checkpoint_every: int = Field(500, ge=1, description="optimizer steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int | None = Field(None, ge=1, description="steps between dev evaluations")
    eval_batch_size: int = Field(128, ge=1)
    group_batches: int = Field(50, ge=1, description="batches per length-grouping window")
    cache_teacher: bool = Field(
        True,
        description="stage 1: when it passes over its data more than once, run the teacher once "
        "and keep its targets on disk (fp16, RUN/teacher_states) for every later pass",
    )
    cache_teacher_max_gb: float = Field(
        16.0,
        ge=0,
        description="the most disk (GiB) the stored stage-1 targets may take; a larger set, or "
        "one over half the free space, is not stored and the teacher runs at every step",
    )

    @field_validator("labels", mode="before")
    @classmethod
    def _label_names_as_text(cls, value: Any) -> Any:
        """`labels: [0, 1]` in YAML names the labels "0" and "1": integer names are written as
        text (a GLUE file's labels are read as text); floats and booleans stay refused."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @model_validator(mode="before")
    @classmethod
    def _fill_stages(cls, data: Any) -> Any:
        """Per-stage settings start from the task preset; given keys win."""
        if not isinstance(data, dict) or "task" not in data:
            return data
        try:
            task = get_task(data["task"]) if data["task"] != "custom" else None
        except TaskError as exc:
            raise ValueError(str(exc)) from None
        defaults = _stage_defaults(task or custom_task("a", None, "label", None))
        data = dict(data)
        for stage in STAGES:
            given = data.get(stage) or {}
            if isinstance(given, BaseModel):
                given = given.model_dump(exclude_unset=True)
            data[stage] = {**defaults[stage], **given}
        return data

    @model_validator(mode="after")
    def _custom_columns(self) -> DistillConfig:
        if self.task == "custom" and not self.text_a:
            raise ValueError("task 'custom' needs text_a (and text_b for pairs, label_column)")
        return self

    # derived ------------------------------------------------------------------------------
    @property
    def spec(self) -> TaskSpec:
        if self.task == "custom":
            return custom_task(self.text_a or "", self.text_b, self.label_column, self.labels)
        return get_task(self.task)

    @property
    def seq_len(self) -> int:
        return self.max_length or self.spec.max_length

    def stage(self, name: str) -> StageConfig:
        return getattr(self, name)

    # loading -------------------------------------------------------------------------------
    @classmethod
    def build(cls, **settings: Any) -> DistillConfig:
        """Validate settings, turning pydantic's report into a one-line ConfigError."""
        return validated(cls, settings, "distill")

    @classmethod
    def load(
        cls,
        path: str | Path | None,
        overrides: dict[str, Any],
        stage_overrides: dict[str, Any],
        stage_defaults: dict[str, dict[str, Any]] | None = None,
    ) -> DistillConfig:
        """`stage_defaults` (over the task preset's), then the YAML file (optional), then `overrides`
        (a mapping merges into the file's), then `stage_overrides` applied to every stage; None
        values in the overrides are ignored (an unset flag keeps the file's value)."""
        data: dict[str, Any] = read_settings(path) if path else {}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                value = {**data[key], **value}
            if value is not None and value != {}:
                data[key] = value
        for stage, defaults in (stage_defaults or {}).items():
            data[stage] = {**defaults, **(data.get(stage) or {})}
        stage_set = {k: v for k, v in stage_overrides.items() if v is not None}
        for stage in STAGES:
            data[stage] = {**(data.get(stage) or {}), **stage_set}
        return cls.build(**data)
