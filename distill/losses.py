"""Distillation losses as small modules: settings in the constructor, tensors in `forward`.

Token losses are averaged per example over its real (unpadded) positions and then over the batch,
so a batch split across processes or micro-batches gives the same gradient as the whole batch and
padding never enters a loss (the official code counts padded query rows and hidden states).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _per_example_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over each example's weighted elements, then over the batch; values/weight [B, ...]."""
    dims = tuple(range(1, values.dim()))
    total = (values * weight).sum(dims)
    count = weight.expand_as(values).sum(dims).clamp_min(1)
    return (total / count).mean()


class AttentionMSE(nn.Module):
    """MSE between pre-softmax attention scores, padded query rows and key columns excluded.

    Different head counts are compared through the head-averaged score map (the paper needs
    equal counts; averaging keeps presets usable with any teacher)."""

    def forward(
        self, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        if student.shape[1] != teacher.shape[1]:
            student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
        m = mask.to(student.dtype)
        pair = (m[:, None, :, None] * m[:, None, None, :]).expand_as(student)
        return _per_example_mean((student.float() - teacher.float()) ** 2, pair.float())


class HiddenMSE(nn.Module):
    """MSE between (projected) student and teacher hidden states at real tokens."""

    def forward(
        self, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        m = mask.to(torch.float)[:, :, None].expand_as(student)
        return _per_example_mean((student.float() - teacher.float()) ** 2, m)


class CosineHidden(nn.Module):
    """DistilBERT's cosine loss 1 - cos(h_s, h_t), averaged over real tokens."""

    def forward(
        self, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        cos = F.cosine_similarity(student.float(), teacher.float(), dim=-1)
        return _per_example_mean(1.0 - cos, mask.to(torch.float))


class SoftCrossEntropy(nn.Module):
    """Cross-entropy of student logits against the teacher's softened distribution, summed over
    classes and averaged over examples (the official code also divides by the class count)."""

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        target = F.softmax(teacher.float() / t, dim=-1)
        return -(target * F.log_softmax(student.float() / t, dim=-1)).sum(-1).mean()


class LogitMSE(nn.Module):
    """Regression distillation: MSE between student and teacher outputs."""

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(student.float(), teacher.float())


class HardLabelLoss(nn.Module):
    """Gold-label loss: cross-entropy (optional class weights) or MSE for regression."""

    def __init__(self, regression: bool, class_weights: list[float] | None = None) -> None:
        super().__init__()
        self.regression = regression
        w = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.register_buffer("class_weights", w, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.regression:
            return F.mse_loss(logits.float().view(-1), labels.float().view(-1))
        return F.cross_entropy(logits.float(), labels, weight=self.class_weights)
