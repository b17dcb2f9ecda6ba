"""Full training state on disk: weights (student and projections), optimizer, scheduler, scaler,
position in the epoch and every process's RNG, so that `--resume` continues exactly; and the
settings the state was trained under, so that a resume under other settings is refused.

Layout: ROOT/step-NNNNNNNN/ with one rng-rankR.pt per process, settings.json and state.pt, written
last: a checkpoint with its state file is complete. Every file is published atomically
(kdaug.files), and older checkpoints are pruned only once the new one is complete, so a crash at
any point leaves the previous checkpoint loadable."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdaug.errors import KdaugError
from kdaug.files import atomic_path, fsync_dir, marker_settings, write_marker

log = logging.getLogger(__name__)
STATE = "state.pt"
SETTINGS = "settings.json"
# settings whose value is a sha256 (of files): a change is said in words, not in digests
CONTENT = {"--train": "its content", "--teacher": "the teacher's files"}


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


def save_state(
    directory: Path, state: dict[str, Any], keep: int, settings: dict[str, Any] | None = None
) -> None:
    """Write the settings, then the shared state last (it marks the checkpoint complete), then
    prune old ones."""
    if settings is not None:
        write_marker(directory / SETTINGS, settings)
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


def _changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    changes = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if old == new:
            continue
        if key in CONTENT:
            changes.append(f"{key}: {CONTENT[key]} changed")
        else:
            changes.append(f"{key} {json.dumps(old)} -> {json.dumps(new)}")
    return changes


def check_settings(directory: Path, settings: dict[str, Any]) -> None:
    """The one check of a resume: the checkpoint at `directory` was written under `settings`
    (see distill.stages.stage_settings), else a one-line KdaugError naming each change. A
    checkpoint written before settings were recorded is resumed unchecked, with a warning."""
    saved = marker_settings(directory / SETTINGS)
    current = json.loads(json.dumps(settings))
    if not isinstance(saved, dict):
        log.warning("%s records no settings: resuming it without checking them", directory)
        return
    if saved == current:
        return
    changes = _changes(saved, current)
    raise KdaugError(
        f"cannot resume from {directory}: it was written under other settings "
        f"({'; '.join(changes)}); resume with the same settings and data (only --epochs and "
        "--max-steps may change), or train afresh in another -o directory"
    )
