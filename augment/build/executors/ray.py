"""Shards on a Ray cluster: one actor per worker, each holding one Augmenter."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

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
    asking for a GPU when the device is CUDA. Workers write to the output directory, which must be
    on a file system that every node sees."""

    def __init__(self, config: AugmentConfig, workers: int | None, address: str | None) -> None:
        self.config = config
        self.workers = workers
        self.address = address

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
            ray.init(address=self.address, include_dashboard=False)
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
        gpus = int(ray.cluster_resources().get("GPU", 0))
        device = self.config.device
        use_gpu = device.startswith("cuda") or (device == "auto" and gpus > 0)
        if use_gpu and gpus == 0:
            raise KdaugError(f"device {device!r} asked for, but the Ray cluster has no GPU")
        have = gpus if use_gpu else int(ray.cluster_resources().get("CPU", 1))
        if self.workers and self.workers > have:  # an actor that cannot be placed would hang
            log.warning("%d workers asked for; the Ray cluster fits %d", self.workers, have)
        n = min(self.workers or have, have)
        actor = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(ShardActor)
        config = self.config.model_dump()
        return [actor.remote(config, "cuda" if use_gpu else "cpu") for _ in range(n)]
