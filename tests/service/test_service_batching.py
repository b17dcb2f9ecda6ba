"""The micro-batcher on its own, with a recording stand-in for the model function."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from augment.config import SampleParams
from augment.records import Record, Variant
from service.batching import MicroBatcher, QueueFullError, ShuttingDownError, pause_point
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
    model = RecordingModel()
    jobs = [(records(f"r{i}"), i + 1) for i in range(12)]
    out, _ = asyncio.run(run_batcher(model, jobs, max_records=64, max_wait_s=0.0))
    assert len(model.batches) == 1  # all submitted before the worker formed a batch
    for (recs, n), result in zip(jobs, out, strict=True):
        assert [len(v) for v in result] == [n]  # each request got its own n back
        assert result[0][0].id == recs[0].id
    assert all(name.startswith("kdaug-model") for name in model.threads)


def test_batches_never_exceed_max_records():
    model = RecordingModel()
    jobs = [(records(f"r{i}", 3), 1) for i in range(10)]
    out, _ = asyncio.run(run_batcher(model, jobs, max_records=7, max_wait_s=0.01))
    assert all(len(b) <= 7 for b in model.batches)
    assert sorted(i for b in model.batches for i in b) == sorted(r.id for rs, _ in jobs for r in rs)
    assert all(not isinstance(o, Exception) for o in out)


def test_disabled_batching_runs_one_request_per_batch():
    model = RecordingModel()
    jobs = [(records(f"r{i}", 2), 1) for i in range(6)]
    asyncio.run(run_batcher(model, jobs, enabled=False))
    assert sorted(len(b) for b in model.batches) == [2] * 6


def test_full_queue_refuses_and_failure_stays_with_its_request():
    model = RecordingModel(fail_on="bad")
    bad = [Record("x", "bad")]
    jobs = [(records("a"), 1), (bad, 1), (records("b"), 1), (records("c"), 1)]
    out, _ = asyncio.run(run_batcher(model, jobs, queue_max=3, max_wait_s=0.01))
    assert isinstance(out[3], QueueFullError)  # 3 waiting already: refused
    assert isinstance(out[1], RuntimeError)
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)


def test_metrics_record_batches_and_queue():
    metrics = ServiceMetrics()
    model = RecordingModel()
    jobs = [(records(f"r{i}"), 1) for i in range(5)]
    asyncio.run(run_batcher(model, jobs, metrics=metrics, max_wait_s=0.01))
    reg = metrics.registry
    assert reg.get_sample_value("kdaug_batches_total") == len(model.batches)
    assert reg.get_sample_value("kdaug_batch_records_sum") == 5
    assert reg.get_sample_value("kdaug_queue_depth") == 0


class GatedModel(RecordingModel):
    """Each batch waits until the test opens the gate; says when a batch has started."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)

    def __call__(self, records, params):
        self.started.release()
        assert self.gate.wait(timeout=30), "gate never opened"
        return super().__call__(records, params)


async def started(model: GatedModel) -> None:
    assert await asyncio.to_thread(model.started.acquire, timeout=30), "no batch started"


def test_timed_out_requests_are_skipped_and_stop_drains():
    async def scenario():
        model = GatedModel()
        events: list[tuple[str, dict]] = []
        batcher = MicroBatcher(model, max_wait_s=0.0)
        batcher.listeners.append(lambda kind, info: events.append((kind, info)))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(records("first"), SampleParams(n=1)))
        await started(model)  # the first batch is running (and waits at the gate)
        late = asyncio.ensure_future(batcher.submit(records("late", 3), SampleParams(n=1)))
        await asyncio.sleep(0)
        late.cancel()  # what a request timeout does to its job
        queued = asyncio.ensure_future(batcher.submit(records("queued"), SampleParams(n=1)))
        await asyncio.sleep(0)
        stopping = asyncio.ensure_future(batcher.stop(timeout_s=30))
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDownError):
            await batcher.submit(records("after"), SampleParams(n=1))
        model.gate.set()
        await stopping  # drains: the queued request is still answered
        return model, events, await first, await queued

    model, events, first, queued = asyncio.run(scenario())
    assert first[0][0].id == "first-0" and queued[0][0].id == "queued-0"
    assert model.batches == [["first-0"], ["queued-0"]]  # the cancelled job never ran
    assert ("cancelled", {"records": 3, "reason": "cancelled"}) in events


def test_round_robin_across_requests_with_bounded_records_per_batch():
    async def scenario():
        model = GatedModel()
        batcher = MicroBatcher(model, max_records=4, max_wait_s=0.0)
        batcher.start()
        big = asyncio.ensure_future(batcher.submit(records("big", 10), SampleParams(n=1)))
        await started(model)  # big-0..3 at the model
        small = [
            asyncio.ensure_future(batcher.submit(records(f"s{i}"), SampleParams(n=1)))
            for i in range(2)
        ]
        await asyncio.sleep(0)
        model.gate.set()
        await asyncio.gather(big, *small)
        await batcher.stop(timeout_s=5)
        return model

    model = asyncio.run(scenario())
    assert model.batches[0] == ["big-0", "big-1", "big-2", "big-3"]
    assert model.batches[1] == ["s0-0", "s1-0", "big-4", "big-5"]  # one each, in turns
    assert all(len(b) <= 4 for b in model.batches)
    assert sorted(i for b in model.batches for i in b) == sorted(
        [f"big-{i}" for i in range(10)] + ["s0-0", "s1-0"]
    )


def test_batches_hold_at_most_max_words_unless_one_record_is_larger():
    sizes = [3, 3, 3, 9, 1, 2]
    recs = [Record(f"r{i}", " ".join(["w"] * k)) for i, k in enumerate(sizes)]
    model = RecordingModel()
    asyncio.run(run_batcher(model, [(recs, 1)], max_records=64, max_wait_s=0.0, max_words=6))
    assert model.batches == [["r0", "r1"], ["r2"], ["r3"], ["r4", "r5"]]


def test_without_merging_requests_take_turns_batch_by_batch():
    async def scenario():
        model = GatedModel()
        batcher = MicroBatcher(model, max_records=2, enabled=False)
        batcher.start()
        a = asyncio.ensure_future(batcher.submit(records("a", 6), SampleParams(n=1)))
        await started(model)
        b = asyncio.ensure_future(batcher.submit(records("b", 2), SampleParams(n=1)))
        await asyncio.sleep(0)
        model.gate.set()
        await asyncio.gather(a, b)
        await batcher.stop(timeout_s=5)
        return model

    model = asyncio.run(scenario())
    assert model.batches == [["a-0", "a-1"], ["b-0", "b-1"], ["a-2", "a-3"], ["a-4", "a-5"]]


def test_stop_fails_what_is_left_at_the_deadline_without_waiting_for_the_model():
    async def scenario():
        model = GatedModel()
        batcher = MicroBatcher(model, max_wait_s=0.0)
        batcher.start()
        stuck = asyncio.ensure_future(batcher.submit(records("stuck"), SampleParams(n=1)))
        await started(model)
        waiting = asyncio.ensure_future(batcher.submit(records("waiting"), SampleParams(n=1)))
        await asyncio.sleep(0)
        await batcher.stop(timeout_s=0.05)  # the model never finishes its batch
        try:  # both answered at the deadline, while the model is still busy
            return await asyncio.wait_for(
                asyncio.gather(stuck, waiting, return_exceptions=True), timeout=10
            )
        finally:
            model.gate.set()

    stuck, waiting = asyncio.run(scenario())
    assert isinstance(stuck, ShuttingDownError) and isinstance(waiting, ShuttingDownError)


class SlicedModel(RecordingModel):
    """A heavy batch runs in slices with a pause point between two (as the masked-LM's forward
    passes do in the service), until the light request has been answered or 2,000 slices."""

    def __init__(self) -> None:
        super().__init__()
        self.light_answered = threading.Event()
        self.heavy_started = threading.Event()
        self.heavy_saw_light_answered: bool | None = None

    def __call__(self, records, params):
        if any(r.id.startswith("heavy") for r in records):
            self.batches.append(["heavy-start"])
            self.heavy_started.set()
            for _ in range(2000):
                pause_point()  # another request's light records may run here
                if self.light_answered.wait(0.005):
                    break
            self.heavy_saw_light_answered = self.light_answered.is_set()
        return super().__call__(records, params)


def test_light_records_run_between_the_slices_of_a_heavy_batch():
    async def scenario():
        model = SlicedModel()
        events: list[tuple[str, dict]] = []
        batcher = MicroBatcher(model, max_wait_s=0.0, light_work=100)
        batcher.listeners.append(lambda kind, info: events.append((kind, info)))
        batcher.start()
        heavy = asyncio.ensure_future(
            batcher.submit(records("heavy", 2), SampleParams(n=1), costs=[5000, 5000])
        )
        assert await asyncio.to_thread(model.heavy_started.wait, 30)  # running at the model
        light = await batcher.submit(records("light"), SampleParams(n=1), costs=[40])
        model.light_answered.set()
        assert not heavy.done()  # answered while the heavy batch was still running
        await heavy
        await batcher.stop(timeout_s=5)
        return model, events, light

    model, events, light = asyncio.run(scenario())
    assert light[0][0].id == "light-0"
    assert model.heavy_saw_light_answered is True
    assert model.batches == [["heavy-start"], ["light-0"], ["heavy-0", "heavy-1"]]
    assert ("batch", {"records": 2, "requests": 1, "lane": "main"}) in events
    assert ("batch", {"records": 1, "requests": 1, "lane": "between"}) in events
    assert all(name.startswith("kdaug-model") for name in model.threads)


def test_a_heavy_record_is_not_run_between_slices():
    async def scenario():
        model = SlicedModel()
        batcher = MicroBatcher(model, max_wait_s=0.0, light_work=100)
        batcher.start()
        first = asyncio.ensure_future(
            batcher.submit(records("heavy-a"), SampleParams(n=1), costs=[5000])
        )
        assert await asyncio.to_thread(model.heavy_started.wait, 30)
        second = asyncio.ensure_future(
            batcher.submit(records("heavy-b"), SampleParams(n=1), costs=[5000])
        )
        await asyncio.sleep(0.05)  # time for a wrong pause to take it (none should)
        model.light_answered.set()  # lets the first heavy batch end
        await asyncio.gather(first, second)
        await batcher.stop(timeout_s=5)
        return model

    model = asyncio.run(scenario())
    assert model.batches == [["heavy-start"], ["heavy-a-0"], ["heavy-start"], ["heavy-b-0"]]


def test_a_heavy_batch_whose_request_gave_up_stops_at_its_next_pause():
    async def scenario():
        model = SlicedModel()  # without a stop, its batch runs 2,000 slices (10 s or more)
        events: list[tuple[str, dict]] = []
        batcher = MicroBatcher(model, max_wait_s=0.0, light_work=100)
        batcher.listeners.append(lambda kind, info: events.append((kind, info)))
        batcher.start()
        heavy = batcher.enqueue(records("heavy"), SampleParams(n=1), costs=[5000])
        assert await asyncio.to_thread(model.heavy_started.wait, 30)
        batcher.cancel(heavy, "timeout")  # what the request timeout does
        while not any(kind == "abandoned" for kind, _ in events):
            await asyncio.sleep(0.001)
        after = await batcher.submit(records("after"), SampleParams(n=1))
        await batcher.stop(timeout_s=5)
        return model, events, after

    model, events, after = asyncio.run(asyncio.wait_for(scenario(), timeout=8))
    assert model.batches == [["heavy-start"], ["after-0"]]  # the heavy batch never finished
    assert model.heavy_saw_light_answered is None
    assert ("abandoned", {"records": 1, "lane": "main"}) in events
    assert after[0][0].id == "after-0"
