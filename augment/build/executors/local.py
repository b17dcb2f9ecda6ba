"""Shards in this process or in a local process pool (one worker per visible GPU on a GPU node;
on CPU, as many as the cores, memory and input size make worth it), keeping the contract of
`base.Executor`."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from augment.build.executors.base import WORKER_DIED, ShardWorker, WorkerLoad, run_bounded
from augment.build.executors.sizing import (
    WorkerPlan,
    available_memory,
    min_rows_per_process,
    plan_workers,
)
from augment.build.shard import Progress, ShardResult, ShardTask
from augment.config import AugmentConfig
from kdaug.errors import KdaugError
from kdaug.machine import THREAD_VARS, available_cores, cap_thread_pools

log = logging.getLogger(__name__)


def local_executor(
    config: AugmentConfig, devices: list[str], threads: int | None = None
) -> SerialExecutor | ProcessExecutor:
    """One worker in this process, or a process pool with one worker per entry of `devices`."""
    if len(devices) == 1:
        return SerialExecutor(config.model_copy(update={"device": devices[0]}), threads=threads)
    return ProcessExecutor(config, devices, threads=threads)


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
        devices = [self.config.device] * self.plan.processes
        self.inner = local_executor(self.config, devices, self.plan.threads)
        yield from self.inner.map_unordered(itertools.chain(ahead, tasks), progress)

    @property
    def worker_loads(self) -> list[WorkerLoad]:
        return self.inner.worker_loads if self.inner is not None else []


class SerialExecutor:
    """Shards one after another in this process (one worker, or an Augmenter given by a caller,
    which runs as the caller set it up). The Augmenter it loads itself gets `threads` torch
    threads (default: the cores this process may use), and while it runs, the BLAS / OpenMP
    pools of this process get as many (`cap_thread_pools`), as a pool worker's would."""

    def __init__(self, config: AugmentConfig, augmenter=None, threads: int | None = None) -> None:
        self.config = config
        self.augmenter = augmenter
        self.threads = threads
        self.worker_loads: list[WorkerLoad] = []
        self.loaded_here = False  # whether `augmenter` is one it loaded

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        worker = None
        with contextlib.ExitStack() as capped:
            for task in tasks:
                if worker is None:  # loaded with the first task: nothing to do, nothing loaded
                    threads = self.threads or available_cores()
                    config = self.config.model_dump()
                    worker = ShardWorker(config, self.config.device, threads, None, self.augmenter)
                    self.augmenter = worker.aug
                    if worker.load is not None:
                        self.worker_loads.append(worker.load)
                        self.loaded_here = True
                    if self.loaded_here:  # its own models, loaded: now cap the pools
                        capped.enter_context(cap_thread_pools(threads))
                yield worker.run(task, progress)


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
    # Ctrl-C reaches the whole process group: the coordinator alone decides, and stops workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["progress"] = progress_q
    _WORKER["worker"] = worker = ShardWorker(config, devices.get(), threads, calibration)
    if worker.load is not None:
        progress_q.put(("loaded", worker.load))


def _run_in_worker(task: ShardTask) -> ShardResult:
    return _WORKER["worker"].run(task, _WORKER["progress"].put)


class ProcessExecutor:
    """A spawn-context process pool, one process per entry of `devices`, each loading its own
    models once (with `threads` torch threads on CPU; default: the cores shared out); shards go
    to whichever worker is free, at most one more than the workers in flight. The int8
    calibration of fast mode is done (or read from the cache) here, once, and shipped to the
    workers. Each worker reports its load in `worker_loads`."""

    def __init__(
        self, config: AugmentConfig, devices: list[str], threads: int | None = None
    ) -> None:
        self.config = config
        self.devices = devices
        self.threads = threads
        self.worker_loads: list[WorkerLoad] = []

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        start_resource_tracker_quietly()
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
        stopped = False
        try:
            yield from run_bounded(
                tasks,
                len(self.devices) + 1,
                lambda task: pool.submit(_run_in_worker, task),
                lambda pending: wait(pending, return_when=FIRST_COMPLETED),
                _result,
            )
        except BaseException:  # an error, a signal, or the build stopped early: no more shards
            _stop_workers(pool)
            stopped = True
            raise
        finally:
            if stopped:
                # A worker killed in the middle of a put may hold a queue's lock for good: wait
                # on neither the queues' feeder threads nor the pool's, only briefly on the drain.
                for q in (progress_q, device_q):
                    q.cancel_join_thread()
                pool.shutdown(wait=False, cancel_futures=True)
                drain.join(timeout=0.5)
            else:
                pool.shutdown(wait=True, cancel_futures=True)
                progress_q.put(None)
                drain.join()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)


def _result(future) -> ShardResult:
    """A finished future's result: the worker's error as it is; a dead worker is WORKER_DIED."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        raise KdaugError(WORKER_DIED) from None


def start_resource_tracker_quietly() -> None:
    """Start multiprocessing's resource tracker (if it is not running yet) with its stderr on
    /dev/null. The tracker outlives this process by a moment and, after a build stopped by a
    signal or an error, may report queue semaphores that it then removes itself; its messages
    would come after kdaug's last line, which says what happened and what to do. Whatever it
    reports, it cleans up: nothing is left behind by keeping it quiet."""
    from multiprocessing import resource_tracker

    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _stop_workers(pool: ProcessPoolExecutor, grace: float = 1.0) -> None:
    """Stop the pool's workers now, shards in flight or not (what they leave is a temporary file,
    which the coordinator removes): SIGTERM, then SIGKILL for any still there after `grace`
    seconds."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _drain(q, progress: Progress, loads: list[WorkerLoad]) -> None:
    """Rows done (ints) go to `progress`; workers' load reports to `loads`."""
    while (item := q.get()) is not None:
        if isinstance(item, tuple):
            loads.append(item[1])
        else:
            progress(item)
