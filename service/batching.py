"""Micro-batching: concurrent requests are merged into one Augmenter call on one model thread.

Each request becomes a job (its records and one SampleParams). A single worker task takes the
first waiting job, gathers more until the batch holds `max_records` records or `max_wait_s` has
passed, and runs the model in a one-thread executor so the event loop stays free. Jobs queued
while the model runs form the next batch, so the batch size follows the load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from augment.config import SampleParams
from augment.records import Record, Variant
from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
AugmentFn = Callable[[list[Record], list[SampleParams]], list[list[Variant]]]


class QueueFullError(Exception):
    """The queue of waiting requests is full; the client should retry later."""


class ShuttingDownError(Exception):
    """The service is draining and takes no new requests."""


@dataclass
class _Job:
    records: list[Record]
    params: SampleParams
    future: asyncio.Future[list[list[Variant]]] = field(repr=False)


class MicroBatcher:
    """Queue of augmentation jobs served by one model worker; merging can be turned off."""

    def __init__(
        self,
        augment: AugmentFn,
        *,
        max_records: int = 64,
        max_wait_s: float = 0.005,
        queue_max: int = 256,
        enabled: bool = True,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._augment = augment
        self.max_records = max_records
        self.max_wait_s = max_wait_s
        self.queue_max = queue_max
        self.enabled = enabled
        self._metrics = metrics
        self._queue: asyncio.Queue[_Job] | None = None
        self._carry: _Job | None = None
        self._busy = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kdaug-model")

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a running batch)."""
        return (self._queue.qsize() if self._queue else 0) + (self._carry is not None)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue(maxsize=self.queue_max)
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="kdaug-batcher")

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the model thread, outside the queue (loading, the warm-up batch)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def submit(self, records: list[Record], params: SampleParams) -> list[list[Variant]]:
        """Queue one request's records; returns their variants, in order."""
        if self._closing or self._queue is None:
            raise ShuttingDownError("the service is shutting down")
        job = _Job(records, params, asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(f"{self.queue_max} requests are already waiting") from None
        self._gauge()
        return await job.future

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Refuse new jobs, let queued and running ones finish (up to `timeout_s`), then stop."""
        self._closing = True
        deadline = time.monotonic() + timeout_s
        while (self.depth or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for job in self._take_all():
            if not job.future.done():
                job.future.set_exception(ShuttingDownError("the service shut down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    # worker ------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            batch = await self._collect()
            self._busy = True
            try:
                await self._run(batch)
            finally:
                self._busy = False

    async def _next(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if not self._queue.empty():
            return self._queue.get_nowait()
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _collect(self) -> list[_Job]:
        """Wait for one live job, then add more until the batch is full or the wait is over."""
        job = await self._next(None)
        while job.future.done():  # its request timed out while waiting
            job = await self._next(None)
        batch, count = [job], len(job.records)
        deadline = time.monotonic() + self.max_wait_s
        while self.enabled and count < self.max_records:
            job = await self._next(deadline - time.monotonic())
            if job is None:
                break
            if job.future.done():
                continue
            if count + len(job.records) > self.max_records:
                self._carry = job
                break
            batch.append(job)
            count += len(job.records)
        self._gauge()
        return batch

    async def _run(self, batch: list[_Job]) -> None:
        records = [r for job in batch for r in job.records]
        params = [job.params for job in batch for _ in job.records]
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            out = await loop.run_in_executor(self._executor, self._augment, records, params)
        except Exception as exc:
            if len(batch) > 1:  # isolate the request that failed; the others still get answers
                log.warning(
                    "batch of %d requests failed (%s); running them one by one", len(batch), exc
                )
                for job in batch:
                    await self._run([job])
                return
            log.exception("augmentation failed")
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        if self._metrics is not None:
            self._metrics.batches.inc()
            self._metrics.batch_records.observe(len(records))
            self._metrics.batch_requests.observe(len(batch))
            self._metrics.batch_seconds.observe(time.perf_counter() - start)
        i = 0
        for job in batch:
            part, i = out[i : i + len(job.records)], i + len(job.records)
            if not job.future.done():
                job.future.set_result(part)

    def _take_all(self) -> list[_Job]:
        jobs = [self._carry] if self._carry else []
        self._carry = None
        while self._queue is not None and not self._queue.empty():
            jobs.append(self._queue.get_nowait())
        return jobs

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(self.depth)
