"""Shard tasks and where they run: in this process, in a local process pool (one worker per
visible GPU on a GPU node; on CPU, as many as the cores, memory and input size make worth it),
or on a Ray cluster. Every executor takes an iterator of tasks, pulls a new one only when a worker
is free (so few shards are in memory), and yields results as shards finish."""

from __future__ import annotations

import itertools
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
from augment.io.layout import ShardLayout
from augment.io.writers import ShardWriter, write_rejects
from augment.records import Record, Reject
from kdaug.errors import KdaugError
from kdaug.files import sha256_file
from kdaug.machine import CGROUP, available_cores, cgroup_cpu_limit  # noqa: F401

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
    layout: ShardLayout | None = None  # the build's shard columns (None: VARIANT_SCHEMA)


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
    writer = ShardWriter(out / "data" / f"{name}.parquet", layout=task.layout)
    variants = 0
    try:
        for i in range(0, len(records), task.batch_size):
            batch = records[i : i + task.batch_size]
            # one write per record: row groups do not follow batches
            for rec, vs in zip(batch, aug.augment(batch), strict=True):
                writer.write(vs, rec.passthrough)
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


def local_devices(device: str, workers: int | None) -> list[str] | None:
    """One device per worker: every visible GPU for auto/cuda (round-robin when `workers` exceeds
    them), else `workers` CPU workers; None for CPU workers left to AutoExecutor."""
    if device in ("auto", "cuda"):
        import torch

        from kdaug.resolve import resolve_device

        if resolve_device(device) == "cuda":
            count = torch.cuda.device_count()
            return [f"cuda:{i % count}" for i in range(workers or count)]
        device = "cpu"
    if workers is None and device == "cpu":
        return None
    return [device] * (workers or 1)


# how much of the machine is there ----------------------------------------------------------
MIB, GIB = 1 << 20, 1 << 30


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def available_memory(root: Path = CGROUP, meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes this process can still allocate: MemAvailable, capped by the room left under a
    cgroup memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`); None when unknown."""
    known = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                known.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (
        (root / "memory.max", root / "memory.current"),
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),
    ):
        limit, used = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and used is not None and limit < 1 << 60:
            known.append(max(0, limit - used))
            break
    return min(known) if known else None


# One worker's resident memory, measured: libraries, spaCy tagger and word vectors about 600 MiB;
# the MLM's weights twice over as float32, about 4.5 times over with their int8 copies.
_WORKER_BASE_BYTES = 700 * MIB
_HUB_MODEL_BYTES = 440 * 1_000_000  # a hub model not on disk yet: assume bert-base
_MEMORY_SHARE = 0.8  # of what is available, the rest left to the coordinator and the system
# Fewest rows a worker process must get for a pool to beat one process. Measured on 2 idle
# cores with the shared MiniLM: a 2-process pool starts 2.5-3 s later than one process (each
# worker imports and loads its own models), and since one process already runs torch on every
# core, the pool adds 1.4x on MLM rows (about 1.9x on word-vector rows): it breaks even near
# 260 rows a process in exact mode, 780 in fast mode and 600 with word vectors only.
MIN_ROWS_PER_PROCESS = {"vectors": 1000, "fast": 1000, "exact": 400}


def worker_bytes(config: AugmentConfig) -> int:
    """An estimate of one worker's resident memory with `config`'s models."""
    if config.mlm.lower() == "none":
        return _WORKER_BASE_BYTES
    from augment.candidates.mlm import int8_wanted
    from kdaug.resolve import resolve_model

    try:
        path = Path(resolve_model(config.mlm))
        weights = [f for f in path.glob("*") if f.suffix in (".safetensors", ".bin")]
        model = sum(f.stat().st_size for f in weights) if path.is_dir() else _HUB_MODEL_BYTES
    except (KdaugError, OSError):
        model = _HUB_MODEL_BYTES
    factor = 4.5 if int8_wanted(config.mlm_quantize, config.mode, "cpu") else 2.0
    return _WORKER_BASE_BYTES + int(model * factor)


def min_rows_per_process(config: AugmentConfig) -> int:
    if config.mlm.lower() == "none":
        return MIN_ROWS_PER_PROCESS["vectors"]
    return MIN_ROWS_PER_PROCESS[config.mode]


@dataclass(frozen=True)
class WorkerPlan:
    """How many CPU worker processes, and torch threads in each, and why."""

    processes: int
    threads: int
    cores: int
    free_bytes: int | None
    limit: str = ""  # what kept the pool smaller than the cores, if anything

    def describe(self) -> str:
        procs = f"{self.processes} process{'es' if self.processes > 1 else ''}"
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        free = (
            "memory unknown" if self.free_bytes is None else f"{self.free_bytes / GIB:.0f} GiB free"
        )
        why = f"; {self.limit}" if self.limit else ""
        return f"workers auto: {procs} x {threads} ({self.cores} cores, {free}{why})"


def plan_workers(
    config: AugmentConfig,
    cores: int,
    free_bytes: int | None,
    rows: int | None = None,
    shards: int | None = None,
    min_rows: int | None = None,
) -> WorkerPlan:
    """Processes = the cores, fewer when `free_bytes` cannot hold that many workers' models, or
    when the work left (`rows` in `shards`, when known) is too small to share: a process must
    get `min_rows` rows. Threads: the cores shared between the processes."""
    cap, limit = cores, ""
    if free_bytes is not None:
        fits = max(1, int(free_bytes * _MEMORY_SHARE // worker_bytes(config)))
        if fits < cap:
            cap, limit = fits, f"memory for {fits} worker{'s' if fits > 1 else ''}"
    if shards is not None and shards < cap:
        cap, limit = max(1, shards), f"{shards} shard{'s' if shards != 1 else ''} to do"
    if rows is not None:
        need = min_rows or min_rows_per_process(config)
        by_rows = max(1, rows // need)
        if by_rows < cap:
            cap, limit = (
                by_rows,
                f"{rows} rows to do: a process needs {need} to pay for its start-up",
            )
    processes = max(1, cap)
    return WorkerPlan(processes, max(1, cores // processes), cores, free_bytes, limit)


class AutoExecutor:
    """`--workers auto` on CPU: reads ahead until it knows whether the work fills the pool that
    the cores and memory allow (`plan_workers`), then runs it in this process (with every core as
    torch threads) or in a ProcessExecutor. Logs its choice in one line; `plan` keeps it."""

    def __init__(
        self,
        config: AugmentConfig,
        *,
        cores: int | None = None,
        free_bytes: int | None = None,
        min_rows: int | None = None,
    ) -> None:
        self.config = config
        self.cores = cores
        self.free_bytes = free_bytes
        self.min_rows = min_rows
        self.plan: WorkerPlan | None = None
        self.inner: SerialExecutor | ProcessExecutor | None = None

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        cores = self.cores or available_cores()
        free = self.free_bytes if self.free_bytes is not None else available_memory()
        most = plan_workers(self.config, cores, free).processes
        need = self.min_rows or min_rows_per_process(self.config)
        tasks = iter(tasks)
        ahead: list[ShardTask] = []
        rows, complete = 0, False
        while most > 1 and (len(ahead) < most or rows < most * need):
            task = next(tasks, None)
            if task is None:
                complete = True
                break
            ahead.append(task)
            rows += len(task.rows)
        if complete:
            self.plan = plan_workers(self.config, cores, free, rows, len(ahead), need)
        else:
            self.plan = plan_workers(self.config, cores, free)
        log.info(self.plan.describe())
        if self.plan.processes == 1:
            self.inner = SerialExecutor(self.config, threads=self.plan.threads)
        else:
            devices = [self.config.device] * self.plan.processes
            self.inner = ProcessExecutor(self.config, devices, threads=self.plan.threads)
        yield from self.inner.map_unordered(itertools.chain(ahead, tasks), progress)


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
    """Shards one after another in this process (one worker, or an Augmenter given by a caller);
    `threads`: torch's CPU threads for the Augmenter it loads (default: torch's own choice)."""

    def __init__(self, config: AugmentConfig, augmenter=None, threads: int | None = None) -> None:
        self.config = config
        self.augmenter = augmenter
        self.threads = threads

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        load_s = 0.0
        for task in tasks:
            if self.augmenter is None:
                self.augmenter, load_s = _load(
                    self.config.model_dump(), self.config.device, self.threads
                )
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


def _init_worker(
    config: dict[str, Any], devices, progress_q, threads: int, ppid: int, calibration=None
) -> None:
    threading.Thread(target=_watch_parent, args=(ppid,), daemon=True).start()
    _WORKER["progress"] = progress_q
    try:
        from augment.candidates import quant

        quant.receive(calibration)
        _WORKER["aug"], _WORKER["load_s"] = _load(config, devices.get(), threads)
    except Exception as exc:  # reported with the first task, as the error it is
        _WORKER["error"] = exc
        return
    mlm = _WORKER["aug"].mlm
    loaded = {
        "pid": os.getpid(),
        "seconds": round(_WORKER["load_s"], 3),
        "threads": threads,
        "int8": mlm.calibration if mlm is not None else None,
    }
    progress_q.put(("loaded", loaded))


def _run_in_worker(task: ShardTask) -> ShardResult:
    if "error" in _WORKER:
        raise _WORKER["error"]
    result = run_shard(_WORKER["aug"], task, _WORKER["progress"].put)
    result.load_seconds, _WORKER["load_s"] = _WORKER["load_s"], 0.0
    return result


class ProcessExecutor:
    """A spawn-context process pool, one process per entry of `devices`, each loading its own
    models once (with `threads` torch threads on CPU; default: the cores shared out); shards go
    to whichever worker is free. The int8 calibration of fast mode is done (or read from the
    cache) here, once, and shipped to the workers. Each worker reports its load in
    `worker_loads` (pid, seconds, threads, where its int8 ranges came from)."""

    def __init__(
        self, config: AugmentConfig, devices: list[str], threads: int | None = None
    ) -> None:
        self.config = config
        self.devices = devices
        self.threads = threads
        self.worker_loads: list[dict[str, Any]] = []

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        device_q, progress_q = ctx.Queue(), ctx.Queue()
        for d in self.devices:
            device_q.put(d)
        threads = self.threads or max(1, available_cores() // len(self.devices))
        calibration = None
        if all(d == "cpu" for d in self.devices):
            from augment.candidates.mlm import int8_calibration_for_workers

            calibration = int8_calibration_for_workers(
                self.config.model_copy(update={"device": "cpu"})
            )
        drain = threading.Thread(
            target=_drain, args=(progress_q, progress, self.worker_loads), daemon=True
        )
        drain.start()
        # Workers inherit the environment: cap the BLAS / OpenMP pools they will start, so that
        # N workers do not run N x cores spinning threads.
        saved = {k: os.environ.get(k) for k in THREAD_VARS}
        os.environ.update({k: str(threads) for k, v in saved.items() if v is None})
        pool = ProcessPoolExecutor(
            len(self.devices),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(
                self.config.model_dump(),
                device_q,
                progress_q,
                threads,
                os.getpid(),
                calibration,
            ),
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


def _drain(q, progress: Progress, loads: list[dict[str, Any]]) -> None:
    """Rows done (ints) go to `progress`; workers' load reports to `loads`."""
    while (item := q.get()) is not None:
        if isinstance(item, tuple):
            loads.append(item[1])
        else:
            progress(item)


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
