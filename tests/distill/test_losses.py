"""Losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from distill.losses import (
    AttentionMSE,
    CosineHidden,
    HardLabelLoss,
    HiddenMSE,
    LogitMSE,
    SoftCrossEntropy,
)


def test_attention_mse_ignores_padded_rows_and_columns() -> None:
    student = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    teacher = torch.zeros_like(student)
    mask = torch.tensor([[1, 0], [1, 1]])
    # example 1: only (0, 0) is real -> 1; example 2: all four real, each 1 -> 1
    assert AttentionMSE()(student, teacher, mask).item() == pytest.approx(1.0)
    student[0, 0, 0, 0] = 3.0  # example 1 -> 9; mean (9 + 1) / 2
    assert AttentionMSE()(student, teacher, mask).item() == pytest.approx(5.0)
    student[0, 0, 1, 1] = 100.0  # padded query row and key column: no effect
    assert AttentionMSE()(student, teacher, mask).item() == pytest.approx(5.0)


def test_attention_mse_averages_heads_when_counts_differ() -> None:
    student = torch.tensor([[[[2.0]]]])  # 1 head
    teacher = torch.tensor([[[[1.0]], [[3.0]], [[5.0]]]])  # 3 heads, mean 3
    assert AttentionMSE()(student, teacher, torch.ones(1, 1)).item() == pytest.approx(1.0)


def test_hidden_mse_at_real_tokens_only() -> None:
    student = torch.tensor([[[1.0, 3.0], [50.0, 50.0]]])
    teacher = torch.zeros_like(student)
    mask = torch.tensor([[1, 0]])
    assert HiddenMSE()(student, teacher, mask).item() == pytest.approx((1 + 9) / 2)


def test_soft_cross_entropy_sums_over_classes() -> None:
    student = torch.tensor([[0.0, math.log(2.0)]])  # softmax 1/3, 2/3
    teacher = torch.tensor([[0.0, math.log(3.0)]])  # softmax 1/4, 3/4
    want = -(0.25 * math.log(1 / 3) + 0.75 * math.log(2 / 3))
    assert SoftCrossEntropy(1.0)(student, teacher).item() == pytest.approx(want, rel=1e-6)


def test_soft_cross_entropy_temperature() -> None:
    student = torch.tensor([[0.0, 2 * math.log(2.0)]])  # / T=2 -> softmax 1/3, 2/3
    teacher = torch.tensor([[0.0, 2 * math.log(3.0)]])  # / T=2 -> softmax 1/4, 3/4
    want = -(0.25 * math.log(1 / 3) + 0.75 * math.log(2 / 3))
    assert SoftCrossEntropy(2.0)(student, teacher).item() == pytest.approx(want, rel=1e-6)


def test_logit_mse_for_regression() -> None:
    got = LogitMSE()(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]]))
    assert got.item() == pytest.approx((1 + 4) / 2)


def test_cosine_hidden() -> None:
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [9.0, -9.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]]])
    mask = torch.tensor([[1, 1, 0]])  # (1 - 0) and (1 - 1) at real tokens
    assert CosineHidden()(student, teacher, mask).item() == pytest.approx(0.5, abs=1e-6)


def test_hard_label_loss_weighted_and_regression() -> None:
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    labels = torch.tensor([0, 1])
    # per-example CE: ln 2 and -ln(3/4); class weights 1 and 3: weighted mean
    want = (1 * math.log(2) + 3 * -math.log(0.75)) / 4
    got = HardLabelLoss(False, [1.0, 3.0])(logits, labels)
    assert got.item() == pytest.approx(want, rel=1e-6)
    reg = HardLabelLoss(True)(torch.tensor([[2.0], [0.0]]), torch.tensor([1.0, 0.0]))
    assert reg.item() == pytest.approx(0.5)
