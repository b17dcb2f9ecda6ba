"""Full training state on disk: weights (student and projections), optimizer, scheduler, scaler,
position in the epoch and every process's RNG, so that `--resume` continues exactly.

Layout: ROOT/step-NNNNNNNN/ with one rng-rankR.pt per process and state.pt, written last: a
checkpoint with its state file is complete. Every file is published atomically (kdaug.files), and
older checkpoints are pruned only once the new one is complete, so a crash at any point leaves the
previous checkpoint loadable."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdaug.files import atomic_path, fsync_dir

STATE = "state.pt"


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step:08d}"


def latest(root: Path) -> Path | None:
    """The newest complete checkpoint under `root` (one with its state file)."""
    done = sorted(p for p in root.glob("step-*") if (p / STATE).is_file())
    return done[-1] if done else None


def save_rank_rng(directory: Path, rank: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / f"rng-rank{rank}.pt") as tmp:
        torch.save(rng_state(), tmp)


def save_state(directory: Path, state: dict[str, Any], keep: int) -> None:
    """Write the shared state last (it marks the checkpoint complete), then prune old ones."""
    with atomic_path(directory / STATE) as tmp:
        torch.save(state, tmp)
    fsync_dir(directory.parent)  # the new checkpoint's folder is durable before old ones go
    old = sorted(p for p in directory.parent.glob("step-*") if (p / STATE).is_file())[:-keep]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)


def load_state(directory: Path, rank: int) -> dict[str, Any]:
    """The shared state of a checkpoint; also restores this process's RNG."""
    state = torch.load(directory / STATE, map_location="cpu", weights_only=False)
    rng = directory / f"rng-rank{rank}.pt"
    if rng.is_file():
        set_rng_state(torch.load(rng, map_location="cpu", weights_only=False))
    return state
