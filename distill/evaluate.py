"""GLUE metrics, dev-set evaluation and the inference speed-up measurement."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from distill.data import Batch, BatchStream
from distill.tasks import TaskSpec


def compute_metrics(
    task: TaskSpec, predictions: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """The task's metrics: CoLA MCC; accuracy; MRPC/QQP accuracy and F1; STS-B Pearson/Spearman.
    `predictions` are logits ([N, C], or [N] / [N, 1] for regression)."""
    out: dict[str, float] = {}
    if task.is_regression:
        from scipy.stats import pearsonr, spearmanr

        pred = predictions.reshape(-1)
        out["pearson"] = float(pearsonr(pred, labels)[0])
        out["spearman"] = float(spearmanr(pred, labels)[0])
        return out
    from sklearn.metrics import f1_score, matthews_corrcoef

    pred = predictions.argmax(-1)
    for name in task.metrics:
        if name == "accuracy":
            out["accuracy"] = float((pred == labels).mean())
        elif name == "f1":
            out["f1"] = float(f1_score(labels, pred, zero_division=0))
        elif name == "mcc":
            out["mcc"] = float(matthews_corrcoef(labels, pred))
    return out


@torch.no_grad()
def predict(
    model: nn.Module, stream: BatchStream, device: torch.device, autocast: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and gold labels over a (labelled) dev stream, model in eval mode."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for batch in stream.epoch(0):
        if batch.labels is None:
            raise ValueError("evaluation needs labelled dev rows")
        b = batch.to(device)
        with autocast() if autocast else contextlib.nullcontext():
            logits.append(model(**b.inputs()).logits.float().cpu())
        labels.append(batch.labels)
    model.train(was_training)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def evaluate(
    model: nn.Module,
    streams: dict[str, BatchStream],
    task: TaskSpec,
    device: torch.device,
    autocast: Any = None,
) -> dict[str, dict[str, float]]:
    """Metrics per named dev set (MNLI matched and mismatched stay apart)."""
    return {
        name: compute_metrics(task, *predict(model, stream, device, autocast))
        for name, stream in streams.items()
    }


def primary_score(task: TaskSpec, metrics: dict[str, dict[str, float]]) -> float:
    """The task's main metric on the first dev set: what picks the best checkpoint."""
    return next(iter(metrics.values()))[task.primary]


@torch.no_grad()
def time_forward(model: nn.Module, batch: Batch, device: torch.device, repeats: int = 5) -> float:
    """Median seconds of one forward pass on `batch` (after a warm-up pass)."""
    model.eval()
    b = batch.to(device)
    model(**b.inputs())
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model(**b.inputs())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))
