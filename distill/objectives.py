"""What each stage optimises. Each objective is an nn.Module whose forward takes a batch (and the
teacher's targets) and returns every loss part, so that DDP sees the whole graph, projections
included."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from distill.config import LossWeights
from distill.data import Batch
from distill.losses import (
    AttentionMSE,
    CosineHidden,
    HardLabelLoss,
    HiddenMSE,
    LogitMSE,
    SoftCrossEntropy,
)
from distill.models import AttentionScores, ModelError, Projections


class TeacherTargets:
    """Runs the frozen teacher under no_grad and keeps what the stage needs: the hidden states
    and attention scores of mapped layers, or the logits (unless the batch brings cached ones)."""

    def __init__(
        self,
        teacher: nn.Module,
        hidden: list[int] | None = None,
        attention: list[int] | None = None,
        autocast: Any = None,
    ) -> None:
        self.model = teacher.eval().requires_grad_(False)
        self.hidden = hidden or []  # indices into hidden_states (0 = embeddings)
        self.scores = AttentionScores(teacher, attention) if attention else None
        self.autocast = autocast or contextlib.nullcontext
        self.forwards = 0  # teacher forward passes run (the logits cache skips them)
        self.states: Any = None  # a distill.teacher_states.TeacherStates, once written

    @torch.no_grad()
    def __call__(self, batch: Batch, stored: bool = True) -> dict[str, Any]:
        """The targets of `batch`: stored ones (`states`, or the batch's cached logits) unless
        `stored` is False, else from a teacher forward pass."""
        if stored and self.states is not None and batch.rows is not None:
            return self.states.targets(batch, batch.input_ids.device)
        if batch.teacher_logits is not None and not self.hidden and self.scores is None:
            return {"logits": batch.teacher_logits}
        self.forwards += 1
        with self.autocast():
            out = self.model(**batch.inputs(), output_hidden_states=bool(self.hidden))
        targets: dict[str, Any] = {"logits": out.logits}
        if self.hidden:
            targets["hidden"] = [out.hidden_states[i] for i in self.hidden]
        if self.scores is not None:
            targets["scores"] = [self.scores.scores(i) for i in self.scores.layers]
            self.scores.clear()
        return targets


def _total(parts: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, torch.Tensor]:
    parts["loss"] = sum(weights[k] * v for k, v in parts.items())
    return parts


class SupervisedObjective(nn.Module):
    """Fine-tuning a teacher: cross-entropy on gold labels (MSE for regression)."""

    def __init__(self, model: nn.Module, regression: bool) -> None:
        super().__init__()
        self.model = model
        self.hard = HardLabelLoss(regression)

    def forward(
        self, batch: Batch, targets: dict[str, Any] | None = None
    ) -> dict[str, torch.Tensor]:
        if batch.labels is None:
            raise ModelError("fine-tuning needs labelled training rows")
        logits = self.model(**batch.inputs()).logits
        return _total({"hard": self.hard(logits, batch.labels)}, {"hard": 1.0})


class IntermediateObjective(nn.Module):
    """Stage 1: attention-score MSE for mapped layers, embedding MSE through W_e and hidden-state
    MSE through W_h (each summed over layers, as in the paper)."""

    def __init__(
        self, student: nn.Module, teacher_dim: int, weights: LossWeights, layers: int
    ) -> None:
        super().__init__()
        self.student = student
        self.proj = Projections(student.config.hidden_size, teacher_dim)
        self.weights = {
            "attention": weights.attention,
            "hidden": weights.hidden,
            "embedding": weights.embedding,
        }
        self.scores = AttentionScores(student, list(range(layers))) if weights.attention else None
        self.attention_mse, self.hidden_mse = AttentionMSE(), HiddenMSE()

    def forward(self, batch: Batch, targets: dict[str, Any]) -> dict[str, torch.Tensor]:
        mask = batch.attention_mask
        need_hidden = bool(self.weights["hidden"] or self.weights["embedding"])
        out = self.student.base_model(**batch.inputs(), output_hidden_states=need_hidden)
        parts: dict[str, torch.Tensor] = {}
        if need_hidden:
            hs, ht = out.hidden_states, targets["hidden"]
            parts["embedding"] = self.hidden_mse(self.proj.w_e(hs[0]), ht[0], mask)
            parts["hidden"] = sum(
                self.hidden_mse(self.proj.w_h(s), t, mask)
                for s, t in zip(hs[1:], ht[1:], strict=True)
            )
        if self.scores is not None:
            parts["attention"] = sum(
                self.attention_mse(self.scores.scores(i), t, mask)
                for i, t in zip(self.scores.layers, targets["scores"], strict=True)
            )
            self.scores.clear()
        return _total(parts, self.weights)


class PredictionObjective(nn.Module):
    """Stage 2: soft cross-entropy at temperature T (MSE to the teacher for regression), plus
    optional gold-label loss and DistilBERT's cosine loss on the last hidden layer."""

    def __init__(
        self, student: nn.Module, weights: LossWeights, temperature: float, regression: bool
    ) -> None:
        super().__init__()
        self.student = student
        self.weights = {"soft": weights.soft, "hard": weights.hard, "cosine": weights.cosine}
        self.soft = LogitMSE() if regression else SoftCrossEntropy(temperature)
        self.hard = HardLabelLoss(regression)
        self.cosine = CosineHidden()

    def forward(self, batch: Batch, targets: dict[str, Any]) -> dict[str, torch.Tensor]:
        w = self.weights
        out = self.student(**batch.inputs(), output_hidden_states=bool(w["cosine"]))
        parts: dict[str, torch.Tensor] = {}
        if w["soft"]:
            parts["soft"] = self.soft(out.logits, targets["logits"])
        if w["hard"]:
            if batch.labels is None:
                raise ModelError("the hard-label loss needs labelled training rows")
            parts["hard"] = self.hard(out.logits, batch.labels)
        if w["cosine"]:
            last_t = targets["hidden"][-1]
            if last_t.shape[-1] != out.hidden_states[-1].shape[-1]:
                raise ModelError("the cosine loss needs equal student and teacher widths")
            parts["cosine"] = self.cosine(out.hidden_states[-1], last_t, batch.attention_mask)
        return _total(parts, w)
