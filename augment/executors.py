"""Shard tasks and where they run: in this process, in a local process pool (one worker per
visible GPU on a GPU node), or on a Ray cluster. Every executor takes an iterator of tasks, pulls a
new one only when a worker is free (so few shards are in memory), and yields results as shards
finish."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augment.config import AugmentConfig
from augment.errors import KdaugError
from augment.io.writers import ShardWriter, sha256_file, write_rejects
from augment.records import Record, Reject

if TYPE_CHECKING:
    from augment.builder import BuildSpec

log = logging.getLogger(__name__)
Progress = Callable[[int], Any]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
COUNTERS = ("replacements_", "words_", "candidates_pos_rejected", "label_fallbacks")


@dataclass
class ShardTask:
    """One input shard: its rows (records and rejects, in input order) and where to write."""

    index: int
    first_row: int
    rows: list[Record | Reject]
    output: str
    batch_size: int


@dataclass
class ShardResult:
    """What a worker reports once a shard's files are durable; the manifest entry."""

    index: int
    first_row: int
    rows_in: int
    records: int
    rows_rejected: int
    variants: int
    file: str
    sha256: str
    rejects_file: str | None
    rejects_sha256: str | None
    seconds: float
    stats: dict[str, int] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0


def shard_name(index: int) -> str:
    return f"part-{index:05d}"


def run_shard(aug, task: ShardTask, report: Callable[[int], Any] | None = None) -> ShardResult:
    """Augment one shard and write its Parquet file (and its rejects) durably (worker side)."""
    t0 = time.perf_counter()
    out, name = Path(task.output), shard_name(task.index)
    before = Counter(aug.stats)
    records = [r for r in task.rows if isinstance(r, Record)]
    rejects = [r for r in task.rows if isinstance(r, Reject)]
    rejects_file = rejects_sha = None
    if rejects:
        rejects_file = f"rejects/{name}.jsonl"
        write_rejects(out / rejects_file, rejects)
        rejects_sha = sha256_file(out / rejects_file)
    writer = ShardWriter(out / "data" / f"{name}.parquet")
    variants = 0
    try:
        for i in range(0, len(records), task.batch_size):
            batch = records[i : i + task.batch_size]
            for vs in aug.augment(batch):  # one write per record: row groups do not follow batches
                writer.write(vs)
                variants += len(vs)
            if report:
                report(len(batch))
    except BaseException:
        writer.abort()
        raise
    path = writer.close()
    if report and rejects:
        report(len(rejects))
    delta = Counter(aug.stats)
    delta.subtract(before)
    return ShardResult(
        index=task.index,
        first_row=task.first_row,
        rows_in=len(task.rows),
        records=len(records),
        rows_rejected=len(rejects),
        variants=variants,
        file=f"data/{name}.parquet",
        sha256=sha256_file(path),
        rejects_file=rejects_file,
        rejects_sha256=rejects_sha,
        seconds=round(time.perf_counter() - t0, 3),
        stats={k: v for k, v in delta.items() if v and k.startswith(COUNTERS)},
        versions=aug.versions(),
    )


def make_executor(spec: BuildSpec):
    """The executor `spec` asks for; locally, one worker per device in `local_devices`."""
    if spec.workers is not None and spec.workers < 1:
        raise KdaugError("--workers must be at least 1")
    if spec.executor == "ray":
        return RayExecutor(spec.config, spec.workers, spec.address)
    if spec.executor != "local":
        raise KdaugError(f"unknown executor {spec.executor!r}; choose local or ray")
    devices = local_devices(spec.config.device, spec.workers)
    if len(devices) == 1:
        return SerialExecutor(spec.config.model_copy(update={"device": devices[0]}))
    return ProcessExecutor(spec.config, devices)


def local_devices(device: str, workers: int | None) -> list[str]:
    """One device per worker: every visible GPU for auto/cuda (round-robin when `workers` exceeds
    them), else CPU workers (`workers`, default 1)."""
    if device in ("auto", "cuda"):
        import torch

        from augment.resolve import resolve_device

        if resolve_device(device) == "cuda":
            count = torch.cuda.device_count()
            return [f"cuda:{i % count}" for i in range(workers or count)]
        device = "cpu"
    return [device] * (workers or 1)


def _load(config: dict[str, Any], device: str, threads: int | None):
    """An Augmenter for one worker, and the seconds it took to load."""
    t0 = time.perf_counter()
    if threads and not device.startswith("cuda"):
        import torch

        torch.set_num_threads(threads)
    from augment.augmenter import Augmenter

    aug = Augmenter(AugmentConfig(**{**config, "device": device}))
    return aug, time.perf_counter() - t0


class SerialExecutor:
    """Shards one after another in this process (one worker, or an Augmenter given by a caller)."""

    def __init__(self, config: AugmentConfig, augmenter=None) -> None:
        self.config = config
        self.augmenter = augmenter

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        load_s = 0.0
        for task in tasks:
            if self.augmenter is None:
                self.augmenter, load_s = _load(self.config.model_dump(), self.config.device, None)
            result = run_shard(self.augmenter, task, progress)
            result.load_seconds, load_s = load_s, 0.0
            yield result


# local process pool -----------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _watch_parent(ppid: int) -> None:
    """Exit when the coordinator is gone (even SIGKILLed), so no orphan keeps writing shards."""
    while os.getppid() == ppid:
        time.sleep(0.2)
    os._exit(1)


def _init_worker(config: dict[str, Any], devices, progress_q, threads: int, ppid: int) -> None:
    threading.Thread(target=_watch_parent, args=(ppid,), daemon=True).start()
    _WORKER["progress"] = progress_q
    try:
        _WORKER["aug"], _WORKER["load_s"] = _load(config, devices.get(), threads)
    except Exception as exc:  # reported with the first task, as the error it is
        _WORKER["error"] = exc


def _run_in_worker(task: ShardTask) -> ShardResult:
    if "error" in _WORKER:
        raise _WORKER["error"]
    result = run_shard(_WORKER["aug"], task, _WORKER["progress"].put)
    result.load_seconds, _WORKER["load_s"] = _WORKER["load_s"], 0.0
    return result


class ProcessExecutor:
    """A spawn-context process pool, one process per entry of `devices`, each loading its own
    models once; shards go to whichever worker is free."""

    def __init__(self, config: AugmentConfig, devices: list[str]) -> None:
        self.config = config
        self.devices = devices

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        device_q, progress_q = ctx.Queue(), ctx.Queue()
        for d in self.devices:
            device_q.put(d)
        threads = max(1, (os.cpu_count() or 1) // len(self.devices))
        drain = threading.Thread(target=_drain, args=(progress_q, progress), daemon=True)
        drain.start()
        # Workers inherit the environment: cap the BLAS / OpenMP pools they will start, so that
        # N workers do not run N x cores spinning threads.
        saved = {k: os.environ.get(k) for k in THREAD_VARS}
        os.environ.update({k: str(threads) for k, v in saved.items() if v is None})
        pool = ProcessPoolExecutor(
            len(self.devices),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.config.model_dump(), device_q, progress_q, threads, os.getpid()),
        )
        try:
            yield from _bounded(pool, tasks, len(self.devices) + 1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            progress_q.put(None)
            drain.join()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)


def _drain(q, progress: Progress) -> None:
    while (n := q.get()) is not None:
        progress(n)


def _bounded(pool: ProcessPoolExecutor, tasks: Iterator[ShardTask], limit: int):
    from concurrent.futures.process import BrokenProcessPool

    pending: set = set()
    tasks = iter(tasks)
    while True:
        while len(pending) < limit and (task := next(tasks, None)) is not None:
            pending.add(pool.submit(_run_in_worker, task))
        if not pending:
            return
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            try:
                result = f.result()
            except BrokenProcessPool:
                raise KdaugError(
                    "a worker process died (out of memory?); re-run to resume"
                ) from None
            yield result


# Ray ----------------------------------------------------------------------------------------
class ShardActor:
    """A Ray actor holding one Augmenter (models loaded once), running shard after shard."""

    def __init__(self, config: dict[str, Any], device: str) -> None:
        self.aug, self.load_s = _load(config, device, 1)

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
