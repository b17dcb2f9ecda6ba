"""What every training job shares (the transformer pipeline and the BiLSTM job alike): the
task's batch streams of a training file and dev files, the settings a stage's checkpoints are
checked against on resume, and a Job that runs timed stages, evaluates, saves and reports into
one output directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from torch import nn

from distill import checkpoint as ckpt
from distill.config import DistillConfig
from distill.data import BatchStream, ExampleSource, RejectLog
from distill.evaluate import evaluate
from distill.fingerprint import data_sha256
from distill.models import save_model
from distill.report import plot_curves, write_metrics
from distill.runtime import Runtime
from distill.trainer import StageState, StageTrainer


def streams(
    cfg: DistillConfig,
    tokenizer: Any,
    train: str | None,
    evals: list[str],
    batch_size: int,
    rejects: RejectLog | None = None,
) -> tuple[BatchStream | None, dict[str, BatchStream]]:
    """The shuffled training stream (None without `train`) and one dev stream per file, by name.
    `rejects`: the run's RejectLog (rows the files reject are reported once per run)."""
    spec = cfg.spec
    train_stream = None
    if train:
        train_stream = BatchStream(
            ExampleSource(train, spec, rejects),
            tokenizer,
            cfg.seq_len,
            batch_size,
            seed=cfg.seed,
            group_batches=cfg.group_batches,
        )
    dev: dict[str, BatchStream] = {}
    for i, path in enumerate(evals):
        name = Path(path).stem if Path(path).stem not in dev else f"{Path(path).stem}-{i}"
        dev[name] = BatchStream(
            ExampleSource(path, spec, rejects),
            tokenizer,
            cfg.seq_len,
            cfg.eval_batch_size,
            shuffle=False,
        )
    return train_stream, dev


# A resume may change a stage's budget: it then runs to the new one, its schedule recomputed for
# the new length from the step it reached. Every other setting must be the checkpoint's.
EXTENDABLE = ("epochs", "max_steps")
FLAGS = {  # setting -> the flag that sets it, the name a refused resume gives
    "lr": "--lr",
    "batch_size": "--batch-size",
    "grad_accum": "--grad-accum",
    "task": "--task",
    "labels": "--labels",
    "text_a": "--text-a",
    "text_b": "--text-b",
    "label_column": "--label-column",
    "max_length": "--max-length",
    "seed": "--seed",
    "layer_map": "--layer-map",
    "temperature": "--temperature",
    "weights.hard": "--hard-weight",
    "bilstm.hidden_size": "--lstm-hidden",
    "bilstm.layers": "--lstm-layers",
    "bilstm.dropout": "--lstm-dropout",
    "bilstm.embeddings": "--embeddings",
    "bilstm.loss": "--logit-loss",
}


def stage_settings(
    cfg: DistillConfig, name: str, train: list[Path], parts: tuple[str, ...], **models: str
) -> dict[str, Any]:
    """What stage `name` trains under, by flag (or config key): its stage settings but the
    budget, the task and tokenisation, the seed, the config `parts` the stage reads (`weights`,
    `bilstm`, ...), the models (`models`: flag -> an identity) and the sha256 of the training
    files `train`."""
    settings = {
        FLAGS.get(k, f"{name}.{k}"): v
        for k, v in cfg.stage(name).model_dump().items()
        if k not in EXTENDABLE
    }
    common = ("task", "labels", "text_a", "text_b", "label_column", "seed", "group_batches")
    values: dict[str, Any] = {k: getattr(cfg, k) for k in (*common, *parts)}
    values["max_length"] = cfg.seq_len
    for key, value in values.items():
        flat = value.model_dump() if isinstance(value, BaseModel) else {"": value}
        for sub, v in flat.items():
            full = f"{key}.{sub}" if sub else key
            settings[FLAGS.get(full, full)] = v
    settings.update({f"--{flag}": identity for flag, identity in models.items()})
    settings["--train"] = data_sha256(train)
    return settings


@dataclass
class Job:
    """What the stages of one training job share: its settings, runtime, output directory and
    RejectLog (rejected rows go to out/rejects.jsonl, once per run)."""

    cfg: DistillConfig
    rt: Runtime
    out: Path
    resume: bool = False
    rejects: RejectLog = field(init=False)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.rejects = RejectLog(self.out / "rejects.jsonl")

    def streams(
        self, tokenizer: Any, train: str | None, evals: list[str], batch_size: int
    ) -> tuple[BatchStream | None, dict[str, BatchStream]]:
        """`streams` of this job, its rejects logged."""
        return streams(self.cfg, tokenizer, train, evals, batch_size, self.rejects)

    def check_resume(self, name: str, settings: dict[str, Any]) -> None:
        """Refuse, before any costly work, to resume stage `name` under other settings."""
        if self.resume and (last := ckpt.latest(self.out / "checkpoints" / name)):
            ckpt.check_settings(last, settings)

    def evaluate(self, model: nn.Module, dev: dict[str, BatchStream]) -> dict[str, Any] | None:
        """The task's metrics of `model` on the dev streams, computed on the main process (None
        on the others)."""
        rt, metrics = self.rt, None
        if rt.is_main:
            metrics = evaluate(model, dev, self.cfg.spec, rt.device, rt.autocast)
        rt.barrier()
        return metrics

    def train(
        self,
        name: str,
        objective: nn.Module,
        model: nn.Module,
        tokenizer: Any,
        stream: BatchStream,
        *,
        teacher: Callable[[Any], dict[str, Any]] | None = None,
        dev: dict[str, BatchStream] | None = None,
        final: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> tuple[StageState, dict[str, Any]]:
        """Run (or resume) stage `name`: its state and its metrics record (steps, seconds). The
        final stage leaves out/best: its best dev model, or without dev files its last one.
        `settings` (stage_settings) go into every checkpoint; a resume must match them."""
        t0 = time.perf_counter()
        trainer = StageTrainer(
            name,
            self.cfg,
            objective,
            model,
            tokenizer,
            stream,
            self.rt,
            self.out,
            teacher=teacher,
            dev=dev,
            settings=settings,
        )
        state = trainer.train(self.resume)
        wall = time.perf_counter() - t0
        record = {
            "steps": state.step,
            "seconds": round(wall, 1),
            "train_seconds": round(state.seconds, 1),
        }
        if final and not dev:
            self.save(model, tokenizer, "best")
        return state, record

    def save(self, model: nn.Module, tokenizer: Any, name: str) -> None:
        """Save `model` and `tokenizer` to out/`name` from the main process."""
        if self.rt.is_main:
            save_model(model, tokenizer, self.out / name)
        self.rt.barrier()

    def report(
        self, metrics: dict[str, Any], histories: dict[str, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Write metrics.json and curves.png; returns `metrics`."""
        write_metrics(self.out, metrics)
        plot_curves(self.out / "curves.png", histories, self.cfg.spec.primary)
        return metrics
