"""Shards on a Ray cluster: one actor per worker, each holding one Augmenter; several actors may
share a GPU (`--workers-per-device`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from augment.build.executors.sizing import plan_per_device
from augment.build.shard import Progress, ShardResult, ShardTask, load_augmenter, run_shard
from augment.config import AugmentConfig
from kdaug.errors import KdaugError

log = logging.getLogger(__name__)


class ShardActor:
    """A Ray actor holding one Augmenter (models loaded once), running shard after shard."""

    def __init__(self, config: dict[str, Any], device: str) -> None:
        self.aug, self.load_s = load_augmenter(config, device, 1)

    def run(self, task: ShardTask) -> ShardResult:
        result = run_shard(self.aug, task)
        result.load_seconds, self.load_s = self.load_s, 0.0
        return result


class RayExecutor:
    """Shard tasks on a Ray cluster (`address`, or a local instance): one actor per worker, each
    asking for 1/`per_device` of a GPU when the device is CUDA. Workers write to the output
    directory (an absolute path: see `portable_config`), which must be on a file system that
    every node sees; the coordinator checks each shard's files before it records them."""

    def __init__(
        self,
        config: AugmentConfig,
        workers: int | None,
        address: str | None,
        per_device: int | str | None = None,
    ) -> None:
        self.config = config
        self.workers = workers
        self.address = address
        self.per_device = per_device

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        try:
            import ray
            from ray.util import ActorPool
        except ImportError:
            raise KdaugError("--executor ray needs Ray: pip install 'kdaug[ray]'") from None
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False)
            except (ConnectionError, ray.exceptions.AuthenticationError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
                raise KdaugError(
                    f"cannot join the Ray cluster at {self.address or 'auto'} ({first}); check "
                    "the address, and if the cluster uses token authentication set "
                    "RAY_AUTH_MODE=token (and its token) for this command too (docs/ray.md)"
                ) from None
        try:
            actors = self._actors(ray)
            pool = ActorPool(actors)
            tasks = iter(tasks)

            def fill() -> None:
                while pool.has_free() and (task := next(tasks, None)) is not None:
                    pool.submit(lambda actor, t: actor.run.remote(t), task)

            fill()
            while pool.has_next():
                result = pool.get_next_unordered()
                progress(result.rows_in)
                yield result
                fill()
            for actor in actors:
                ray.kill(actor)
        finally:
            if started:
                ray.shutdown()

    def _actors(self, ray) -> list:
        n, gpus = actor_plan(self.config, ray.cluster_resources(), self.workers, self.per_device)
        actor = ray.remote(num_cpus=1, num_gpus=gpus)(ShardActor)
        config = self.config.model_dump()
        return [actor.remote(config, "cuda" if gpus else "cpu") for _ in range(n)]


def actor_plan(
    config: AugmentConfig,
    resources: dict[str, float],
    workers: int | None,
    per_device: int | str | None,
) -> tuple[int, float]:
    """How many actors, and the share of a GPU each asks for (0 on CPU), on a cluster with
    `resources`: `per_device` actors on each GPU (default 1; "auto": `plan_per_device` from the
    cluster's CPUs per GPU), `workers` of them when given; on CPU one actor per CPU. Never more
    actors than the cluster can place: one that cannot be placed would wait forever."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    device = config.device
    use_gpu = device.startswith("cuda") or (device == "auto" and gpus > 0)
    if use_gpu and gpus == 0:
        raise KdaugError(f"device {device!r} asked for, but the Ray cluster has no GPU")
    k = 1
    if use_gpu and per_device == "auto":
        plan = plan_per_device(config, gpus, cpus, None)
        log.info("%s on the Ray cluster's %d GPUs", plan.describe(), gpus)
        k = plan.processes
    elif use_gpu and per_device:
        k = per_device
    have = min(gpus * k, cpus) if use_gpu else cpus
    if workers and workers > have:
        log.warning("%d workers asked for; the Ray cluster fits %d", workers, have)
    return min(workers or have, have), round(1 / k, 4) if use_gpu else 0
