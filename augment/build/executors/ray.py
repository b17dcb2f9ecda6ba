"""Shards on a Ray cluster: one actor per worker, each holding one Augmenter; several actors may
share a GPU (`--workers-per-device`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from augment.build.executors.base import WORKER_DIED, ShardWorker, WorkerLoad, run_bounded
from augment.build.executors.sizing import workers_per_device
from augment.build.shard import Progress, ShardResult, ShardTask
from augment.config import AugmentConfig
from kdaug.errors import KdaugError

log = logging.getLogger(__name__)
STOP_SECONDS = 1.0  # after an error or a signal, the longest wait for the killed actors


class ShardActor:
    """A Ray actor holding one ShardWorker (models loaded once), running shard after shard."""

    def __init__(self, config: dict[str, Any], device: str) -> None:
        self.worker = ShardWorker(config, device, 1)

    def run(self, task: ShardTask) -> ShardResult:
        return self.worker.run(task)

    def load(self) -> WorkerLoad | None:
        return self.worker.load


class RayExecutor:
    """Shard tasks on a Ray cluster (`address`, or a local instance): one actor per worker, each
    asking for 1/`per_device` of a GPU when the device is CUDA; a task goes to an actor only
    when it is free. Workers write to the output directory (an absolute path: see
    `portable_config`), which must be on a file system that every node sees; the coordinator
    checks each shard's files before it records them. Progress is reported a shard at a time."""

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
        self.worker_loads: list[WorkerLoad] = []

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        try:
            import ray
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
        actors: list = []
        owner: dict = {}  # a task in flight: its actor
        try:
            actors = self._actors(ray)
            free, used = list(actors), set()

            def submit(task: ShardTask):
                actor = free.pop()
                ref = actor.run.remote(task)
                owner[ref] = actor
                used.add(actor)
                return ref

            def wait_first(pending: set) -> tuple[set, set]:
                done, rest = ray.wait(list(pending), num_returns=1)
                return set(done), set(rest)

            def result(ref) -> ShardResult:
                free.append(owner.pop(ref))
                res = _get(ray, ref)
                progress(res.rows_in)
                return res

            yield from run_bounded(tasks, len(actors), submit, wait_first, result)
            loads = ray.get([actor.load.remote() for actor in used])  # loaded: no wait
            self.worker_loads.extend(load for load in loads if load is not None)
        finally:
            for actor in actors:  # stops a shard in flight too (after an error or a signal)
                ray.kill(actor)
            if owner:  # their tasks fail as their actors die: wait for that, briefly
                ray.wait(list(owner), num_returns=len(owner), timeout=STOP_SECONDS)
            if started:
                ray.shutdown()

    def _actors(self, ray) -> list:
        n, gpus = actor_plan(self.config, ray.cluster_resources(), self.workers, self.per_device)
        actor = ray.remote(num_cpus=1, num_gpus=gpus)(ShardActor)
        config = self.config.model_dump()
        return [actor.remote(config, "cuda" if gpus else "cpu") for _ in range(n)]


def _get(ray, ref) -> ShardResult:
    """The result of a shard task, or its worker's error as the error it is (Ray wraps it in a
    RayTaskError whose message is a traceback); a lost actor is WORKER_DIED."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, (KdaugError, OSError)):
            raise exc.cause from None
        raise
    except ray.exceptions.RayActorError:
        raise KdaugError(WORKER_DIED) from None


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
    if use_gpu:
        where = f" on the Ray cluster's {gpus} GPUs"
        k = workers_per_device(config, per_device, gpus, cpus, None, where)
    have = min(gpus * k, cpus) if use_gpu else cpus
    if workers and workers > have:
        log.warning("%d workers asked for; the Ray cluster fits %d", workers, have)
    return min(workers or have, have), round(1 / k, 4) if use_gpu else 0
