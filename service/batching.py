"""Micro-batching: concurrent requests share model batches on one model thread, fairly.

Each request becomes a job (its records, one SampleParams, and each record's estimated work).
A single worker forms each batch from the jobs waiting, one record from each job in turn
(round-robin), until the batch holds `max_records` records or `max_words` words, so a request
of many records is served a slice at a time. One record can still be long work (a long text in
exact mode): while a batch holding a record heavier than `light_work` runs (or one of more than
`HEAVY_BATCH` times that), the records of at most `light_work` waiting meanwhile are formed
into batches of their own, which the model thread runs at its next `pause_point` (the service's
masked-LM calls it between forward passes), so a short request never waits for a long one.
Records do not depend on the batch they run in (the augmenter seeds each record by its id), so
splitting a request gives the same answer. A job whose request has given up (timeout, client
gone, shutdown) is dropped between batches: the records it has not started are never run, and
a batch nobody waits for any more stops at its next pause. The model runs on a daemon thread,
so the event loop stays free and a batch still running at the end of a shutdown does not hold
up the process's exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from augment.config import SampleParams
from augment.records import Record, Variant
from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
AugmentFn = Callable[[list[Record], list[SampleParams]], list[list[Variant]]]
Listener = Callable[[str, dict[str, Any]], None]

WORD = re.compile(r"\w+")
# a batch of light records only is heavy (short requests run between its passes) beyond this
# many times `light_work`: about 60 one-sentence records in exact mode
HEAVY_BATCH = 8


def words_of(record: Record) -> int:
    """Words of a record (both fields): the unit of model work."""
    return len(WORD.findall(record.text_a)) + len(WORD.findall(record.text_b or ""))


class QueueFullError(Exception):
    """The queue of waiting requests is full; the client should retry later."""


class ShuttingDownError(Exception):
    """The service is draining and takes no new requests."""


class Abandoned(Exception):
    """Raised at a pause point: every request waiting for the running batch has given up."""


@dataclass(eq=False)
class _Job:
    records: list[Record]
    params: SampleParams
    future: asyncio.Future[list[list[Variant]]] = field(repr=False)
    words: list[int] = field(repr=False)
    costs: list[int] = field(repr=False)  # estimated model work of each record
    results: list[list[Variant] | None] = field(repr=False)
    next: int = 0  # first record not yet given to a batch
    done: int = 0  # records answered
    reason: str = "cancelled"  # why it gave up, if it does

    @property
    def left(self) -> int:
        return len(self.records) - self.next


_here = threading.local()  # the ModelThread running on this thread, if any
_Call = tuple[concurrent.futures.Future, Callable[[], Any], Callable[[], bool] | None]


def pause_point() -> None:
    """Let waiting light work run here: model code calls it between units of a long batch (the
    service's masked-LM between forward passes). On a ModelThread it runs the first urgent call
    waiting, if any, or raises Abandoned when the call running is no longer wanted; elsewhere,
    or inside a call it runs, it does nothing."""
    thread = getattr(_here, "thread", None)
    if thread is not None:
        thread.pause()


class ModelThread:
    """One daemon thread that runs callables in order (the model is used from one thread).
    Urgent callables go first, and also run inside a running one at its `pause_point`s."""

    def __init__(self, name: str = "kdaug-model") -> None:
        self._cond = threading.Condition()
        self._calls: deque[_Call] = deque()
        self._urgent: deque[_Call] = deque()
        self._wanted: Callable[[], bool] | None = None  # of the call running now
        self._stopped = False
        self._paused = False  # an urgent call is running inside a pause
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        fn: Callable[[], T],
        urgent: bool = False,
        wanted: Callable[[], bool] | None = None,
    ) -> concurrent.futures.Future[T]:
        """Run `fn` on the thread; `wanted` (called at pause points) False stops it there."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._cond:
            (self._urgent if urgent else self._calls).append((future, fn, wanted))
            self._cond.notify()
        return future

    def shutdown(self) -> None:
        """Stop after the call running now (if any); callables not started are cancelled."""
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def pause(self) -> None:
        """Run the first urgent call waiting (on this thread, inside the running call)."""
        if self._paused or threading.current_thread() is not self._thread:
            return
        if self._wanted is not None and not self._wanted():
            raise Abandoned("every request waiting for this batch has given up")
        with self._cond:
            if self._stopped or not self._urgent:
                return
            item = self._urgent.popleft()
        self._paused = True
        try:
            self._call(*item)
        finally:
            self._paused = False

    def _call(
        self,
        future: concurrent.futures.Future,
        fn: Callable[[], Any],
        wanted: Callable[[], bool] | None,
    ) -> None:
        if not future.set_running_or_notify_cancel():
            return
        outer, self._wanted = self._wanted, wanted
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the caller
            future.set_exception(exc)
        finally:
            self._wanted = outer

    def _loop(self) -> None:
        _here.thread = self
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or self._urgent or self._calls)
                if self._stopped:
                    left = [*self._urgent, *self._calls]
                    self._urgent.clear()
                    self._calls.clear()
                    break
                item = (self._urgent or self._calls).popleft()
            self._call(*item)
        for future, _, _ in left:  # cancel whatever had not started at the stop
            future.cancel()


class MicroBatcher:
    """Jobs served by one model worker in fair, bounded batches; merging can be turned off.

    `listeners` are called on the event loop with (event, info) for: admitted, batch,
    batch_done, cancelled, idle, closing; tests and logs can wait on them. A batch's `lane` is
    "main", or "between" for light records run at the pauses of a heavy batch.
    `light_work` (0: off) is the most estimated work a record, and a batch of them, may have
    to run between the pauses of a heavy batch (see `_heavy`).
    """

    def __init__(
        self,
        augment: AugmentFn,
        *,
        max_records: int = 64,
        max_words: int = 1024,
        max_wait_s: float = 0.005,
        queue_max: int = 256,
        enabled: bool = True,
        light_work: int = 0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._augment = augment
        self.light_work = light_work
        self.max_records = max_records
        self.max_words = max_words
        self.max_wait_s = max_wait_s
        self.queue_max = queue_max
        self.enabled = enabled
        self.listeners: list[Listener] = []
        self._metrics = metrics
        self._jobs: deque[_Job] = deque()
        self._by_future: dict[asyncio.Future, _Job] = {}
        self._first: _Job | None = None  # the job served first in the last batch
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._closing = False
        self._drain_timer: asyncio.TimerHandle | None = None
        self._batches = 0
        self._task: asyncio.Task[None] | None = None
        self._thread = ModelThread()

    @property
    def depth(self) -> int:
        """Requests admitted and not yet answered (waiting, or part-way through)."""
        return len(self._jobs)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._wakeup, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="kdaug-batcher")

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the model thread, outside the queue (loading, the warm-up batch)."""
        return await asyncio.wrap_future(self._thread.submit(fn))

    def enqueue(
        self, records: list[Record], params: SampleParams, costs: list[int] | None = None
    ) -> asyncio.Future:
        """Admit one request's records as a job; its future gives their variants, in order.
        `costs`: each record's estimated model work (default: its words).

        Raises ShuttingDownError or QueueFullError when the job cannot be admitted.
        """
        if self._closing or self._wakeup is None or self._idle is None:
            raise ShuttingDownError("the service is shutting down")
        if len(self._jobs) >= self.queue_max:
            raise QueueFullError(f"{self.queue_max} requests are already waiting")
        future: asyncio.Future[list[list[Variant]]] = asyncio.get_running_loop().create_future()
        words = [words_of(r) for r in records]
        job = _Job(records, params, future, words, costs or words, [None] * len(records))
        future.add_done_callback(lambda _: self._ended(job))
        self._jobs.append(job)
        self._by_future[future] = job
        self._idle.clear()
        self._emit("admitted", records=len(records))
        self._gauge()
        self._wakeup.set()
        if not records:
            future.set_result([])
        return future

    def cancel(self, future: asyncio.Future, reason: str = "cancelled") -> None:
        """Give up a job (its request timed out, or its client went away): the records it
        has not started are never run; `reason` labels the count of those records."""
        job = self._by_future.get(future)
        if job is not None and not future.done():
            job.reason = reason
            future.cancel()

    async def submit(
        self, records: list[Record], params: SampleParams, costs: list[int] | None = None
    ) -> list[list[Variant]]:
        """`enqueue` and wait; cancelling the caller cancels the job."""
        future = self.enqueue(records, params, costs)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.cancel(future)
            raise

    def close(self, drain_s: float) -> None:
        """Take no new jobs; those left when `drain_s` has passed get ShuttingDownError."""
        if self._closing:
            return
        self._closing = True
        self._emit("closing", drain_s=drain_s)
        loop = asyncio.get_running_loop()
        self._drain_timer = loop.call_later(drain_s, self._fail_all, "the drain deadline passed")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Refuse new jobs, let the admitted ones finish (up to `timeout_s`, or the deadline
        set by `close`), fail the rest, and stop; a batch still running is not waited for."""
        self.close(timeout_s)
        if self._idle is not None:
            await self._idle.wait()  # the last job has ended (answered, or failed at the deadline)
        self._fail_all("the service shut down")
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown()

    # worker ------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            batch = await self._collect()
            main = asyncio.ensure_future(self._run(batch))
            try:
                if self._heavy(batch):
                    await self._between(main)
                await main
            finally:
                main.cancel()  # the worker was cancelled (stop); nothing if it has ended

    def _heavy(self, batch: list[tuple[_Job, int, int]]) -> bool:
        """Does `batch` hold a record heavier than `light_work`, or more than HEAVY_BATCH
        times that in all? Batches of short records merged under load are not: the requests
        arriving meanwhile make the next, larger batch, as micro-batching wants."""
        if not self.light_work:
            return False
        costs = [c for job, a, b in batch for c in job.costs[a:b]]
        return max(costs) > self.light_work or sum(costs) > HEAVY_BATCH * self.light_work

    async def _between(self, main: asyncio.Future) -> None:
        """While the heavy batch `main` runs, run the light records waiting in batches of
        their own at the model thread's pauses (or right after `main`, if it has none left)."""
        assert self._wakeup is not None
        while not main.done():
            batch = self._pack(light=True)
            if batch:
                await self._run(batch, lane="between")
                continue
            self._wakeup.clear()
            woken = asyncio.ensure_future(self._wakeup.wait())
            try:
                await asyncio.wait({main, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()

    def _waiting(self) -> int:
        return sum(j.left for j in self._jobs if not j.future.done())

    async def _collect(self) -> list[tuple[_Job, int, int]]:
        """Wait for work, give more requests `max_wait_s` to arrive, then form a batch."""
        assert self._wakeup is not None
        while True:
            while not self._waiting():
                self._emit("idle", batches=self._batches)
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = time.monotonic() + self.max_wait_s
            while self.enabled and self._waiting() < self.max_records:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._pack()
            if batch:
                return batch

    def _pack(self, light: bool = False) -> list[tuple[_Job, int, int]]:
        """Slices (job, start, stop) of one batch: records taken one per job in turn, up to
        `max_words` words; `light`: only records of at most `light_work`, up to that in all."""
        jobs = self._jobs
        if self._first is not None and self._first in jobs and len(jobs) > 1:
            jobs.remove(self._first)  # who went first last time goes last now
            jobs.append(self._first)
        live = [j for j in jobs if j.left and not j.future.done()]
        if not self.enabled:
            live = live[:1]
        taken = dict.fromkeys(live, 0)  # records taken from each job (jobs hash by identity)
        limit = self.light_work if light else self.max_words
        records = total = 0
        while live and records < self.max_records:
            for job in list(live):
                if records >= self.max_records:
                    break
                k = taken[job]
                w = (job.costs if light else job.words)[job.next + k]
                if (records or light) and total + w > limit:
                    live.remove(job)  # its next record does not fit; others' may
                    continue
                taken[job] = k + 1
                records, total = records + 1, total + w
                if job.left == k + 1:
                    live.remove(job)
        batch = []
        for job in jobs:
            k = taken.get(job, 0)
            if k:
                batch.append((job, job.next, job.next + k))
                job.next += k
        self._first = batch[0][0] if batch else None
        self._gauge()
        return batch

    async def _run(self, batch: list[tuple[_Job, int, int]], lane: str = "main") -> None:
        records = [r for job, a, b in batch for r in job.records[a:b]]
        params = [job.params for job, a, b in batch for _ in range(a, b)]
        self._emit("batch", records=len(records), requests=len(batch), lane=lane)
        start = time.perf_counter()

        def wanted() -> bool:  # read on the model thread: a future's state is one attribute
            return any(not job.future.done() for job, _, _ in batch)

        try:
            out = await asyncio.wrap_future(
                self._thread.submit(
                    lambda: self._augment(records, params), lane == "between", wanted
                )
            )
        except Abandoned:  # stopped at a pause: nobody waits for its answers
            self._emit("abandoned", records=len(records), lane=lane)
            return
        except Exception as exc:
            if len(batch) > 1:  # isolate the request that failed; the others still get answers
                log.warning(
                    "batch of %d requests failed (%s); running them one by one", len(batch), exc
                )
                for part in batch:
                    if not part[0].future.done():
                        await self._run([part], lane)
                return
            log.exception("augmentation failed")
            job = batch[0][0]
            if not job.future.done():
                job.future.set_exception(exc)
            return
        finally:
            self._batches += 1
        if self._metrics is not None:
            self._metrics.batches.inc()
            self._metrics.batch_records.observe(len(records))
            self._metrics.batch_requests.observe(len(batch))
            self._metrics.batch_seconds.observe(time.perf_counter() - start)
        i = 0
        for job, a, b in batch:
            part, i = out[i : i + b - a], i + b - a
            if job.future.done():
                continue
            job.results[a:b] = part
            job.done += b - a
            if job.done == len(job.records):
                job.future.set_result(list(job.results))  # type: ignore[arg-type]
        self._emit("batch_done", records=len(records), batches=self._batches, lane=lane)

    # bookkeeping -------------------------------------------------------------------------
    def _ended(self, job: _Job) -> None:
        """A job's future is done: answered, failed, or given up by its request."""
        if job in self._jobs:
            self._jobs.remove(job)
        self._by_future.pop(job.future, None)
        if job.left:  # records never run: count them, by why the job ended
            if job.future.cancelled():
                reason = job.reason
            elif isinstance(job.future.exception(), ShuttingDownError):
                reason = "shutdown"
            else:
                reason = "failed"
            if self._metrics is not None:
                self._metrics.cancelled_records.labels(reason).inc(job.left)
            self._emit("cancelled", records=job.left, reason=reason)
            job.next = len(job.records)
        self._gauge()
        if not self._jobs and self._idle is not None:
            self._idle.set()

    def _fail_all(self, why: str) -> None:
        for job in list(self._jobs):
            if not job.future.done():
                job.future.set_exception(ShuttingDownError(f"the service is shutting down: {why}"))

    def _emit(self, kind: str, **info: Any) -> None:
        for listener in self.listeners:
            try:
                listener(kind, info)
            except Exception:  # a listener must not break the worker
                log.exception("batcher listener failed on %s", kind)

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self.depth)
