"""Where shard tasks run: in this process, in a local process pool (`local`), or on a Ray
cluster (`ray`). Every executor keeps the contract of `base.Executor` (the builder knows no
other): `map_unordered(tasks, progress)` pulls a task only when a worker is free and yields each
ShardResult as its shard's files become durable. `make_executor` is the one place that chooses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from augment.build.executors.base import Executor
from augment.build.executors.local import (
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
    local_executor,
)
from augment.build.executors.ray import RayExecutor
from augment.build.executors.sizing import local_devices
from augment.config import AugmentConfig
from kdaug.errors import KdaugError, UsageError
from kdaug.resolve import DEFAULT_MLM, PACKAGED_MINILM
from kdaug.vectors import PACKAGED_GLOVE

if TYPE_CHECKING:
    from augment.build.spec import BuildSpec

MODEL_PATHS = ("mlm", "vectors", "tagger")  # settings that may name a local file or folder
MODEL_NAMES = {"none", DEFAULT_MLM, PACKAGED_MINILM, PACKAGED_GLOVE}  # names, never paths


__all__ = [
    "AutoExecutor",
    "Executor",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "make_executor",
    "portable_config",
]


def make_executor(spec: BuildSpec) -> Executor:
    """The executor `spec` asks for. Locally: `workers_per_device` processes on each visible GPU
    (device auto or cuda; default one); on CPU, `workers` processes, or with `workers` None or
    "auto" an AutoExecutor, which sizes the pool from the cores, the memory and the rows left to
    do. Workers get `portable_config(spec.config)`."""
    workers = _count(spec.workers, "--workers")
    workers = None if workers == "auto" else workers
    per_device = _count(spec.workers_per_device, "--workers-per-device")
    config = portable_config(spec.config)
    if spec.executor == "ray":
        return RayExecutor(config, workers, spec.address, per_device)
    if spec.executor != "local":
        raise KdaugError(f"unknown executor {spec.executor!r}; choose local or ray")
    devices = local_devices(config, workers, per_device)
    if devices is None:
        return AutoExecutor(config.model_copy(update={"device": "cpu"}))
    return local_executor(config, devices)


def _count(value: int | str | None, flag: str) -> int | str | None:
    """A process count as given: a positive number, "auto" or None (auto)."""
    if value is None or value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{flag} must be auto or a number, not {value!r}")
    if value < 1:
        raise UsageError(f"{flag} must be auto or at least 1")
    return value


def portable_config(config: AugmentConfig) -> AugmentConfig:
    """`config` with every model or vectors path made absolute, as workers must get it: a Ray
    actor's working directory is where its node's `ray start` ran, not the coordinator's. Names
    (hub models, spaCy packages, 'default', 'none', the packaged ones) are left as they are;
    symbolic links are kept, so a path on shared storage stays the path every node knows."""
    update = {}
    for name in MODEL_PATHS:
        value = getattr(config, name)
        path = Path(value).expanduser()
        if value not in MODEL_NAMES and not path.is_absolute() and path.exists():
            update[name] = os.path.abspath(path)
    return config.model_copy(update=update)
