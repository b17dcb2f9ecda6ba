"""Distillation on CUDA: bf16 and fp16 autocast (with the gradient scaler), and fp32 losses that
match the CPU's (`pytest -m gpu` on a GPU machine; skipped without CUDA)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from distill import checkpoint as ckpt
from distill.config import DistillConfig
from distill.pipeline import distill

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _cfg(device: str, precision: str, **stage: Any) -> DistillConfig:
    stages = {"batch_size": 4, "epochs": 1, "lr": 1e-3, **stage}
    return DistillConfig.build(
        task="mrpc",
        max_length=32,
        checkpoint_every=100,
        device=device,
        precision=precision,
        intermediate=stages,
        prediction=stages,
    )


def _history(out: Path, stage: str) -> list[dict[str, Any]]:
    state = torch.load(ckpt.latest(out / "checkpoints" / stage) / ckpt.STATE, weights_only=False)
    return [h for h in state["trainer"]["history"] if "loss" in h]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, make_classifier: Any) -> Path:
    return make_classifier(tmp_path_factory.mktemp("gpu-teacher") / "t", layers=4)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_both_stages_run_under_autocast_on_cuda(
    precision: str, teacher: Path, shards: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    m = distill(_cfg("cuda", precision), str(teacher), "teacher-layers:2", str(shards), [], out)
    assert m["device"].startswith("cuda")
    for stage in ("intermediate", "prediction"):
        losses = [h["loss"] for h in _history(out, stage)]
        assert losses and all(math.isfinite(x) for x in losses), (stage, losses)
    state = torch.load(ckpt.latest(out / "checkpoints" / "prediction") / ckpt.STATE)
    assert state["scaler"] == {} if precision == "bf16" else state["scaler"]["scale"] > 0


def test_fp32_losses_match_the_cpu(teacher: Path, shards: Path, tmp_path: Path) -> None:
    """The first step of each stage (same batch, same weights; no dropout in the tiny models)
    gives every loss part to a relative 1e-4 on the CPU and on the GPU."""
    runs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        distill(_cfg(device, "fp32", max_steps=1), str(teacher), "teacher-layers:2", str(shards),
                [], out)  # fmt: skip
        runs[device] = {stage: _history(out, stage)[0] for stage in ("intermediate", "prediction")}
    for stage, cpu in runs["cpu"].items():
        gpu = runs["cuda"][stage]
        for part in set(cpu) - {"step", "lr"}:
            assert abs(gpu[part] - cpu[part]) <= 1e-4 * abs(cpu[part]), (stage, part, cpu, gpu)
