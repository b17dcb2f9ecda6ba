"""One training stage, on one device or under DDP: AMP, gradient accumulation, checkpoints and
exact resume, dev evaluation and the best model by the task's metric.

`batch_size` counts examples per optimizer step over all processes: each global batch is cut
into one part per process and then into micro-batches, and each part's loss is weighted by its
share of the batch, so 1 process and N processes take the same steps."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill import checkpoint as ckpt
from distill.config import DistillConfig, StageConfig
from distill.data import Batch, BatchStream
from distill.evaluate import evaluate, primary_score
from distill.models import save_model
from distill.objectives import TeacherTargets
from distill.runtime import Runtime
from kdaug.errors import KdaugError

log = logging.getLogger(__name__)


@dataclass
class StageState:
    """Where a stage stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of `epoch` already consumed
    best: float = -math.inf
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    dev: dict[str, Any] = field(default_factory=dict)  # last dev metrics
    best_dev: dict[str, Any] = field(default_factory=dict)  # dev metrics of the best/ model


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _schedule(stage: StageConfig, total: int) -> Any:
    warm = int(stage.warmup * total)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if stage.schedule == "constant":
            return 1.0
        return max(0.0, (total - step) / max(1, total - warm))

    return factor


class StageTrainer:
    """Trains `objective` (the student, plus projections in stage 1) for one stage."""

    def __init__(
        self,
        name: str,
        cfg: DistillConfig,
        objective: nn.Module,
        model: nn.Module,
        tokenizer: Any,
        train: BatchStream,
        runtime: Runtime,
        out_dir: Path,
        *,
        teacher: TeacherTargets | None = None,
        dev: dict[str, BatchStream] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.name, self.cfg, self.stage = name, cfg, cfg.stage(name)
        self.settings = settings  # what a resume is checked against (stages.stage_settings)
        self.model, self.tokenizer, self.train_stream, self.rt = model, tokenizer, train, runtime
        self.teacher, self.dev = teacher, dev or {}
        self.out_dir, self.ckpt_dir = out_dir, out_dir / "checkpoints" / name
        self.objective = objective.to(runtime.device)
        per_epoch = len(train)
        self.total = math.ceil(self.stage.epochs * per_epoch)
        if self.stage.max_steps:
            self.total = min(self.total, self.stage.max_steps)
        # the fused kernel: one pass over every parameter (the per-tensor loop took 8x the CPU
        # time of a step's AdamW on a 15M-parameter student, most of it in the embeddings)
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.objective, self.stage.weight_decay),
            lr=self.stage.lr,
            fused=runtime.device.type in ("cpu", "cuda"),
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _schedule(self.stage, self.total)
        )
        self.scaler = torch.amp.GradScaler(
            runtime.device.type, enabled=runtime.dtype == torch.float16
        )
        self.runner: nn.Module = self.objective
        if runtime.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.runner = DistributedDataParallel(
                self.objective, device_ids=ids, find_unused_parameters=True
            )
        if cfg.compile:
            self.runner = torch.compile(self.runner)
        self.state = StageState()

    # ---------------------------------------------------------------------------------------
    def train(self, resume: bool = False) -> StageState:
        """Run (or continue) the stage up to its step budget; returns the final state."""
        if resume and (last := ckpt.latest(self.ckpt_dir)):
            self._restore(last)
        from kdaug.progress import progress

        bar = progress(
            total=self.total,
            initial=self.state.step,
            desc=self.name,
            unit="step",
            disable=not self.rt.is_main,
        )
        epochs = math.ceil(self.stage.epochs)
        self.objective.train()
        while self.state.step < self.total and self.state.epoch < epochs:
            for batch in self.train_stream.epoch(self.state.epoch, start=self.state.position):
                self.state.position += 1
                if len(batch) < self.rt.world:
                    continue  # too short to give every process a row
                t0 = time.perf_counter()
                parts = self._optimizer_step(batch)
                dt = time.perf_counter() - t0
                self.state.seconds += dt
                self._record(parts, len(batch) / dt, bar)
                if self.state.step % self.cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.cfg.eval_every and self.state.step % self.cfg.eval_every == 0:
                    self._evaluate()
                if self.state.step >= self.total:
                    break
            else:
                self.state.epoch, self.state.position = self.state.epoch + 1, 0
                if not self.cfg.eval_every:
                    self._evaluate()
                continue
            break
        bar.close()
        if self.dev and (not self.state.history or "dev" not in self.state.history[-1]):
            self._evaluate()
        self.save_checkpoint()
        return self.state

    def _optimizer_step(self, batch: Batch) -> dict[str, float]:
        """Forward/backward over this process's share of `batch`, then one optimizer step.
        Returns each loss part averaged over the whole global batch."""
        rt, n = self.rt, len(batch)
        micro = batch.split(rt.world)[rt.rank].split(self.stage.grad_accum)
        totals: dict[str, torch.Tensor] = {}
        for j, mb in enumerate(micro):
            mb = mb.to(rt.device)
            targets = self.teacher(mb) if self.teacher is not None else None
            last = j == len(micro) - 1
            sync = contextlib.nullcontext() if last or not rt.distributed else self.runner.no_sync()
            with sync:
                with rt.autocast():
                    parts = self.runner(mb, targets)
                share = len(mb) * rt.world / n
                self.scaler.scale(parts["loss"] * share).backward()
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v.detach().float() * len(mb)
        if self.stage.max_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.objective.parameters(), self.stage.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        keys = sorted(totals)
        summed = rt.sum(torch.stack([totals[k] for k in keys]).cpu()) / n
        return dict(zip(keys, summed.tolist(), strict=True))

    def _record(self, parts: dict[str, float], throughput: float, bar: Any) -> None:
        row = {"step": self.state.step, "lr": self.scheduler.get_last_lr()[0], **parts}
        self.state.history.append(row)
        bar.set_postfix(loss=f"{parts['loss']:.4f}", ex_s=f"{throughput:.1f}")
        bar.update(1)

    def _evaluate(self) -> None:
        """Dev metrics on the main process; a better score saves out/best."""
        if not self.dev:
            return
        if self.rt.is_main:
            task = self.train_stream.source.task
            metrics = evaluate(self.model, self.dev, task, self.rt.device, self.rt.autocast)
            self.state.dev = metrics
            self.state.history.append({"step": self.state.step, "dev": metrics})
            log.info("%s step %d dev %s", self.name, self.state.step, metrics)
            if (score := primary_score(task, metrics)) > self.state.best:
                self.state.best = score
                self.state.best_dev = metrics
                save_model(self.model, self.tokenizer, self.out_dir / "best")
        self.rt.barrier()
        self.objective.train()

    # ---------------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Every process writes its RNG; rank 0 writes the shared state and marks it complete."""
        directory = ckpt.step_dir(self.ckpt_dir, self.state.step)
        ckpt.save_rank_rng(directory, self.rt.rank)
        self.rt.barrier()
        state = {
            "model": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "trainer": self.state.__dict__,
            "world": self.rt.world,
        }
        keep = self.cfg.keep_checkpoints
        if self.rt.is_main:
            ckpt.save_state(directory, state, keep, self.settings)
        self.rt.barrier()

    def _restore(self, directory: Path) -> None:
        if self.settings is not None:
            ckpt.check_settings(directory, self.settings)
        state = ckpt.load_state(directory, self.rt.rank)
        try:
            self.objective.load_state_dict(state["model"])
        except RuntimeError as exc:  # a checkpoint older than its settings record
            first = str(exc).strip().splitlines()[-1].strip()
            raise KdaugError(
                f"cannot resume from {directory}: its weights do not fit this model ({first}); "
                "resume with the settings it was written under, or train afresh in another -o "
                "directory"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.state = StageState(**state["trainer"])
        log.info("%s: resumed from %s (step %d)", self.name, directory, self.state.step)
