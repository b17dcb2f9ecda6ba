"""Where shard tasks run: in this process, in a local process pool (`local`), or on a Ray
cluster (`ray`). Every executor has `map_unordered(tasks, progress)`: it pulls a task only when a
worker is free and yields each ShardResult as its shard's files become durable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from augment.build.executors.local import (
    AutoExecutor,
    ProcessExecutor,
    SerialExecutor,
    local_devices,
)
from augment.build.executors.ray import RayExecutor
from kdaug.errors import KdaugError

if TYPE_CHECKING:
    from augment.build.spec import BuildSpec


def make_executor(spec: BuildSpec):
    """The executor `spec` asks for. Locally: one worker per visible GPU (device auto or cuda);
    on CPU, `workers` processes, or with `workers` None or "auto" an AutoExecutor, which sizes
    the pool from the cores, the memory and the rows left to do."""
    workers = None if spec.workers == "auto" else spec.workers
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise KdaugError(f"--workers must be auto or a number, not {spec.workers!r}")
    if workers is not None and workers < 1:
        raise KdaugError("--workers must be auto or at least 1")
    if spec.executor == "ray":
        return RayExecutor(spec.config, workers, spec.address)
    if spec.executor != "local":
        raise KdaugError(f"unknown executor {spec.executor!r}; choose local or ray")
    devices = local_devices(spec.config.device, workers)
    if devices is None:
        return AutoExecutor(spec.config.model_copy(update={"device": "cpu"}))
    if len(devices) == 1:
        return SerialExecutor(spec.config.model_copy(update={"device": devices[0]}))
    return ProcessExecutor(spec.config, devices)
