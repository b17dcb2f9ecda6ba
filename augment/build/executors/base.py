"""What the builder asks of an executor (`Executor`), and what every executor shares: one worker's
models and shard loop (`ShardWorker`) and the loop that keeps a bounded number of shards in
flight (`run_bounded`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypedDict, TypeVar

from augment.build.shard import Progress, ShardResult, ShardTask, load_augmenter, run_shard

WORKER_DIED = "a worker process died (out of memory?); re-run to resume"


class WorkerLoad(TypedDict):
    """One worker's model load: its process, the seconds it took, its torch threads (None:
    torch's own choice) and where its int8 ranges came from (shipped, memory, disk, calibrated;
    None without int8 layers)."""

    pid: int
    seconds: float
    threads: int | None
    int8: str | None


class Executor(Protocol):
    """Where shard tasks run. The builder depends on this contract only:

    - `map_unordered(tasks, progress)` pulls a task from `tasks` only when a worker can take it
      (a few more than the workers in flight at most, so memory does not grow with the input)
      and yields each task's ShardResult, in the order shards finish, once the shard's files are
      durable and its completion record written. Each worker's first result carries the seconds
      its models took to load (`load_seconds`); the rows of every yielded shard have been passed
      to `progress` (as counts) by the time the iterator is exhausted.
    - `worker_loads` lists a `WorkerLoad` for each worker that loaded models.
    - Errors: a worker's exception is raised in the coordinator as the exception it is (a
      KdaugError keeps its one line, an OSError its errno); a worker lost (killed, out of memory)
      is a KdaugError (`WORKER_DIED`).
    - Stopping: an exception raised in the coordinator while the iterator runs (`Interrupted` on
      SIGINT or SIGTERM) or the iterator closed early stops every worker before it returns,
      within about a second and without waiting on anything a killed worker may hold; a stopped
      worker leaves only temporary files, which the builder removes."""

    @property
    def worker_loads(self) -> list[WorkerLoad]: ...

    def map_unordered(
        self, tasks: Iterator[ShardTask], progress: Progress
    ) -> Iterator[ShardResult]: ...


class ShardWorker:
    """One worker: its Augmenter (models loaded once on `device`, with `threads` torch threads on
    CPU and the int8 ranges of `calibration` when a coordinator shipped them), running shard
    after shard. A load that fails is raised by `run`, with the first task, as the error it is
    (a worker process or actor that raised while starting would only be seen as dead)."""

    def __init__(
        self,
        config: dict[str, Any],
        device: str,
        threads: int | None = None,
        calibration: dict[str, Any] | None = None,
        augmenter: Any = None,
    ) -> None:
        self.error: Exception | None = None
        self.load: WorkerLoad | None = None  # None: given an Augmenter, or the load failed
        self.load_s = 0.0
        self.aug = augmenter
        if augmenter is not None:
            return
        try:
            if calibration:
                from augment.candidates import quant

                quant.receive(calibration)
            self.aug, self.load_s = load_augmenter(config, device, threads)
        except Exception as exc:
            self.error = exc
            return
        mlm = self.aug.mlm
        self.load = WorkerLoad(
            pid=os.getpid(),
            seconds=round(self.load_s, 3),
            threads=threads,
            int8=mlm.calibration if mlm is not None else None,
        )

    def run(self, task: ShardTask, report: Progress | None = None) -> ShardResult:
        if self.error is not None:
            raise self.error
        result = run_shard(self.aug, task, report)
        result.load_seconds, self.load_s = self.load_s, 0.0
        return result


Pending = TypeVar("Pending")  # a submitted task: a future, a Ray object reference


def run_bounded(
    tasks: Iterator[ShardTask],
    limit: int,
    submit: Callable[[ShardTask], Pending],
    wait_first: Callable[[set[Pending]], tuple[set[Pending], set[Pending]]],
    result: Callable[[Pending], ShardResult],
) -> Iterator[ShardResult]:
    """At most `limit` tasks in flight: `submit` one task, `wait_first` for (done, still
    pending), `result` of a done one (which raises the worker's error). A new task is pulled
    from `tasks` only when one has finished."""
    pending: set[Pending] = set()
    tasks = iter(tasks)
    while True:
        while len(pending) < limit and (task := next(tasks, None)) is not None:
            pending.add(submit(task))
        if not pending:
            return
        done, pending = wait_first(pending)
        for handle in done:
            yield result(handle)
