"""The micro-batcher on its own, with a recording stand-in for the model function."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from augment.config import SampleParams
from augment.records import Record, Variant
from service.batching import MicroBatcher, QueueFullError, ShuttingDownError
from service.metrics import ServiceMetrics


class RecordingModel:
    """Echoes each record as one variant; remembers each batch and the thread it ran on."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()

    def __call__(self, records: list[Record], params: list[SampleParams]) -> list[list[Variant]]:
        assert len(records) == len(params)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if any(r.text_a == self.fail_on for r in records):
            raise RuntimeError("model failure")
        self.batches.append([r.id for r in records])
        return [
            [Variant(r.id, 0, r.text_a, None, None, [])] * p.n
            for r, p in zip(records, params, strict=True)
        ]


def records(prefix: str, k: int = 1) -> list[Record]:
    return [Record(f"{prefix}-{i}", f"text {prefix} {i}") for i in range(k)]


async def run_batcher(model: RecordingModel, jobs, **kwargs):
    batcher = MicroBatcher(model, **kwargs)
    batcher.start()
    try:
        return await asyncio.gather(
            *(batcher.submit(recs, SampleParams(n=n)) for recs, n in jobs), return_exceptions=True
        ), batcher
    finally:
        await batcher.stop(timeout_s=5)


def test_concurrent_requests_share_batches_and_keep_their_own_params():
    model = RecordingModel(delay=0.02)
    jobs = [(records(f"r{i}"), i + 1) for i in range(12)]
    out, _ = asyncio.run(run_batcher(model, jobs, max_records=64, max_wait_s=0.01))
    assert len(model.batches) < len(jobs)
    for (recs, n), result in zip(jobs, out, strict=True):
        assert [len(v) for v in result] == [n]  # each request got its own n back
        assert result[0][0].id == recs[0].id
    assert all(name.startswith("kdaug-model") for name in model.threads)


def test_batches_never_exceed_max_records():
    model = RecordingModel(delay=0.01)
    jobs = [(records(f"r{i}", 3), 1) for i in range(10)]
    out, _ = asyncio.run(run_batcher(model, jobs, max_records=7, max_wait_s=0.01))
    assert all(len(b) <= 7 for b in model.batches)
    assert sorted(i for b in model.batches for i in b) == sorted(r.id for rs, _ in jobs for r in rs)
    assert all(not isinstance(o, Exception) for o in out)


def test_disabled_batching_runs_one_request_per_batch():
    model = RecordingModel(delay=0.005)
    jobs = [(records(f"r{i}", 2), 1) for i in range(6)]
    asyncio.run(run_batcher(model, jobs, enabled=False))
    assert sorted(len(b) for b in model.batches) == [2] * 6


def test_full_queue_refuses_and_failure_stays_with_its_request():
    model = RecordingModel(delay=0.05, fail_on="bad")
    bad = [Record("x", "bad")]
    jobs = [(records("a"), 1), (bad, 1), (records("b"), 1), (records("c"), 1)]
    out, _ = asyncio.run(run_batcher(model, jobs, queue_max=3, max_wait_s=0.01))
    assert isinstance(out[3], QueueFullError)  # 3 waiting already: refused
    assert isinstance(out[1], RuntimeError)
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)


def test_metrics_record_batches_and_queue():
    metrics = ServiceMetrics()
    model = RecordingModel(delay=0.01)
    jobs = [(records(f"r{i}"), 1) for i in range(5)]
    asyncio.run(run_batcher(model, jobs, metrics=metrics, max_wait_s=0.01))
    reg = metrics.registry
    assert reg.get_sample_value("kdaug_batches_total") == len(model.batches)
    assert reg.get_sample_value("kdaug_batch_records_sum") == 5
    assert reg.get_sample_value("kdaug_queue_depth") == 0


def test_timed_out_requests_are_skipped_and_stop_drains():
    async def scenario():
        model = RecordingModel(delay=0.05)
        batcher = MicroBatcher(model, max_wait_s=0.0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(records("first"), SampleParams(n=1)))
        await asyncio.sleep(0.01)  # the first batch is running
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(records("late"), SampleParams(n=1)), 0.01)
        queued = asyncio.ensure_future(batcher.submit(records("queued"), SampleParams(n=1)))
        await asyncio.sleep(0)
        await batcher.stop(timeout_s=5)  # drains: the queued request is still answered
        with pytest.raises(ShuttingDownError):
            await batcher.submit(records("after"), SampleParams(n=1))
        return model, await first, await queued

    model, first, queued = asyncio.run(scenario())
    assert first[0][0].id == "first-0" and queued[0][0].id == "queued-0"
    assert ["late-0"] not in model.batches
