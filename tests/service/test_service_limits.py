"""Per-request work budget, fair batching across requests, and cancelling the work of a request
that timed out or whose client went away, against real servers."""

from __future__ import annotations

import concurrent.futures
import re
import socket
import threading
import uuid

import httpx
import pytest

from augment.config import SampleParams
from augment.records import Record
from service.schemas import AugmentRequest

SENTENCE = "The quiet film was a delight from start to finish."  # 10 words
OTHER = "Rain fell all night over the old harbour town and its boats."


def post(url: str, body: dict, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{url}/augment", json=body, timeout=timeout)


def metrics_of(live, name: str, **labels: str) -> float:
    value = live.state.metrics.registry.get_sample_value(name, labels or None)
    return value or 0.0


# the budget ------------------------------------------------------------------------------


def work_of(live, texts: list[str], n: int = 2) -> int:
    """The work the server charges for `texts` (its estimate, with the loaded MLM)."""
    params = SampleParams.from_config(live.state.config, n=n)
    return sum(live.state.work([Record(str(i), t) for i, t in enumerate(texts)], params))


def test_work_over_the_budget_is_refused_before_any_work(serve):
    with serve(max_n=64) as live:
        limit = work_of(live, [SENTENCE] * 6)
    with serve(max_request_work=limit, max_n=64) as live:
        before = metrics_of(live, "kdaug_batches_total")
        r = post(live.url, {"texts": [SENTENCE] * 8, "n": 16})
        assert r.status_code == 413, r.text
        detail = r.json()["detail"]
        assert f"{work_of(live, [SENTENCE] * 8)} units" in detail, detail
        assert f"limit of {limit}" in detail and "KDAUG_MAX_REQUEST_WORK" in detail
        assert metrics_of(live, "kdaug_batches_total") == before
        assert metrics_of(live, "kdaug_rejected_total", reason="work") == 1
        ok = post(live.url, {"texts": [SENTENCE] * 6, "n": 16})  # at the limit: inside
        assert ok.status_code == 200, ok.text


def test_one_long_text_costs_more_than_the_same_words_as_short_texts(serve):
    """Exact mode masks each word in a copy of its whole text (up to the copy window): the
    work of a text grows with its words times its length, not with its words alone."""
    short = [SENTENCE] * 20  # 200 words in 20 texts
    long = " ".join(short)  # the same 200 words in one text
    with serve() as live:
        assert work_of(live, [long]) > 5 * work_of(live, short)
        limit = 2 * work_of(live, short)
    with serve(max_request_work=limit) as live:
        assert post(live.url, {"texts": short, "n": 2}).status_code == 200
        r = post(live.url, {"texts": [long], "n": 2})
        assert r.status_code == 413 and "KDAUG_MAX_REQUEST_WORK" in r.json()["detail"]


def test_an_estimated_response_over_the_limit_is_refused(serve):
    with serve(max_response_bytes=20_000, max_n=64) as live:
        r = post(live.url, {"texts": [SENTENCE, OTHER] * 4, "n": 40})
        assert r.status_code == 413, r.text
        assert "KDAUG_MAX_RESPONSE_BYTES" in r.json()["detail"]
        assert "20000" in r.json()["detail"]
        assert post(live.url, {"texts": [SENTENCE], "n": 2}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"texts": [SENTENCE, OTHER], "n": 8, "seed": 1},
        {"texts": ['He said "no" \\ twice, then "yes".'], "n": 6, "p": 0.9},
        {"texts": ["Café déjà vu — naïve façade, 東京 🙂 again."], "n": 5, "p": 1.0},
        {"pairs": [[SENTENCE, OTHER]], "labels": ["entailment"], "ids": ["x" * 150], "n": 12},
    ],
)
def test_the_response_estimate_is_not_below_the_real_size(serve, body):
    with serve(max_n=64) as live:
        r = post(live.url, body)
        assert r.status_code == 200, r.text
        req = AugmentRequest.model_validate(body)
        size = req.response_bytes(req.params(live.state.config))
        assert len(r.content) <= size


# fair batching ---------------------------------------------------------------------------


def _library_answer(augmenter, texts: list[str], n: int, seed: int) -> list[list[dict]]:
    params = SampleParams.from_config(augmenter.config, n=n, seed=seed)
    records = [Record(str(i), t) for i, t in enumerate(texts)]
    return [[v.to_row() for v in vs] for vs in augmenter.augment(records, params)]


def test_a_small_request_finishes_while_a_big_one_is_in_progress(serve, events, augmenter):
    from tests.service.conftest import StepAugmenter

    big = [f"{SENTENCE} Part {i}." for i in range(16)]
    with serve(wrap=StepAugmenter, batch_max_records=4, batch_max_wait_ms=0) as live:
        step, batcher = live.state.augmenter, live.state.batcher
        batcher.listeners.append(events)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            large = pool.submit(post, live.url, {"texts": big, "n": 2, "seed": 5})
            step.wait_started(1)  # the big request's first batch holds the model
            small = pool.submit(post, live.url, {"texts": [OTHER], "n": 2, "seed": 5})
            events.wait("admitted", 2)
            for k in (1, 2):
                step.release()
                step.wait_done(k)
                if small.done():
                    break
            small.result(timeout=30)  # answered after at most two batches of the big one
            assert not large.done()
            assert small.result().status_code == 200
            assert all(len(ids) <= 4 for ids in step.calls)
            step.release(100)
            r = large.result(timeout=60)
        assert r.status_code == 200, r.text
        got = [item["variants"] for item in r.json()["results"]]
        assert got == _library_answer(augmenter, big, 2, 5)  # split into batches, same answer
        assert len(step.calls) >= 16 // 4


class GatedLongTexts:
    """The real augmenter; a batch holding a long text starts only once the service has handed
    a batch to the model thread's pauses (or after 20 s, when it never does)."""

    def __init__(self, augmenter) -> None:
        self.inner, self.config, self.mlm = augmenter, augmenter.config, augmenter.mlm
        self.between = threading.Event()
        self.waited: bool | None = None

    def versions(self):
        return self.inner.versions()

    @property
    def loaded_sources(self):
        return self.inner.loaded_sources

    def listen(self, kind: str, info: dict) -> None:
        if kind == "batch" and info.get("lane") == "between":
            self.between.set()

    def augment(self, records, params):
        if any(len(r.text_a) > 1000 for r in records):
            self.waited = self.between.wait(timeout=20)
        return self.inner.augment(records, params)


def test_a_short_request_is_answered_between_the_forward_passes_of_a_long_text(
    serve, events, augmenter
):
    """The attack of a 2,000-character text in exact mode, scaled to the tiny models: the
    short request runs at a pause between the long text's forward passes, not after them."""
    # new text each run: copies the masked-LM has cached run no forward pass, so no pause
    long = (f"Run {uuid.uuid4().hex[:8]}. " + " ".join([SENTENCE, OTHER] * 20))[:2000]
    settings = {"batch_slice_tokens": 256, "max_request_work": 10**7, "batch_max_wait_ms": 0}
    with serve(wrap=GatedLongTexts, **settings) as live:
        gated, batcher = live.state.augmenter, live.state.batcher
        batcher.listeners += [events, gated.listen]
        assert work_of(live, [long]) > batcher.light_work >= work_of(live, [OTHER])
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            large = pool.submit(post, live.url, {"texts": [long, long[:1990] + " Again."], "n": 5})
            events.wait("batch", lane="main", records=2)  # the long texts are at the model
            small = post(live.url, {"texts": [OTHER], "n": 2, "seed": 5})
            assert small.status_code == 200, small.text
            r = large.result(timeout=120)
        assert r.status_code == 200, r.text
    assert gated.waited is True  # the short request was handed to the pauses
    done = [info["lane"] for kind, info in events.seen if kind == "batch_done"]
    assert done == ["between", "main"]  # answered before the long texts' batch ended
    got = small.json()["results"][0]["variants"]
    assert got == _library_answer(augmenter, [OTHER], 2, 5)[0]  # the same rows as alone


def test_sliced_forward_passes_give_the_same_candidates(augmenter):
    from augment.candidates.masking import MaskQuery
    from service.work import slice_forward_passes

    mlm = augmenter.mlm
    text = " ".join([SENTENCE, OTHER] * 6)
    queries = [MaskQuery(text, m.start(), m.end()) for m in re.finditer(r"[a-z]{3,}", text)]
    copies = mlm.masking.copies(queries)
    whole = type(mlm).forward(mlm, copies)
    before = mlm.__dict__.get("forward")  # a server's slicing, or none
    slice_forward_passes(mlm, 64)
    try:
        passes = mlm.forward_passes
        assert mlm.forward(copies) == whole
        assert mlm.forward_passes - passes >= 8  # cut into passes of at most 64 tokens
    finally:
        if before is None:
            del mlm.forward
        else:
            mlm.forward = before


def test_one_batch_holds_at_most_batch_max_words(serve):
    from tests.service.conftest import StepAugmenter

    texts = [SENTENCE] * 6  # 10 words each
    with serve(wrap=StepAugmenter, batch_max_words=25, batch_max_wait_ms=0) as live:
        step = live.state.augmenter
        step.release(100)
        r = post(live.url, {"texts": texts, "n": 2})
        assert r.status_code == 200
        assert [len(ids) for ids in step.calls] == [2, 2, 2]


# cancelling ------------------------------------------------------------------------------


def test_the_work_of_a_timed_out_request_stops(serve, events):
    from tests.service.conftest import StepAugmenter

    texts = [f"{SENTENCE} Part {i}." for i in range(16)]
    with serve(
        wrap=StepAugmenter, batch_max_records=4, batch_max_wait_ms=0, request_timeout_s=1.0
    ) as live:
        step = live.state.augmenter
        live.state.batcher.listeners.append(events)
        r = post(live.url, {"texts": texts, "n": 2})  # its first batch waits at the gate
        assert r.status_code == 503 and "KDAUG_REQUEST_TIMEOUT_S" in r.json()["detail"]
        events.wait("cancelled", reason="timeout")  # reported as the request gives up
        step.release(100)
        events.wait("idle", batches=1)  # the running batch ended; nothing else was started
        assert step.calls and len(step.calls) == 1 and len(step.calls[0]) == 4
        assert metrics_of(live, "kdaug_cancelled_records_total", reason="timeout") == 12
        assert metrics_of(live, "kdaug_batch_records_sum") == 4


def test_the_work_of_a_request_whose_client_left_stops(serve, events):
    from tests.service.conftest import StepAugmenter

    texts = [f"{SENTENCE} Part {i}." for i in range(16)]
    body = httpx.Request("POST", "http://x/augment", json={"texts": texts, "n": 2}).content
    with serve(wrap=StepAugmenter, batch_max_records=4, batch_max_wait_ms=0) as live:
        step = live.state.augmenter
        live.state.batcher.listeners.append(events)
        port = int(live.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = (
                "POST /augment HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            step.wait_started(1)
        events.wait("cancelled", reason="disconnect")
        step.release(100)
        events.wait("idle", batches=1)
        assert metrics_of(live, "kdaug_cancelled_records_total", reason="disconnect") == 12
        assert len(step.calls) == 1
        assert post(live.url, {"texts": [SENTENCE], "n": 2}).status_code == 200


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_the_work_estimate_is_not_below_the_masked_copies(augmenter, mode):
    import dataclasses

    from augment.candidates.masking import MaskQuery
    from service.work import WORD, copy_work

    masking = dataclasses.replace(augmenter.mlm.masking, mode=mode)
    tok = masking.tokenizer
    texts = [SENTENCE, OTHER, " ".join([SENTENCE, OTHER] * 12), " ".join(["dog"] * 300)]
    texts.append(" ".join(["dog , , , , , , , , , , , , , , , , , ,"] * 20))  # sparse words
    for text in texts:
        words = list(WORD.finditer(text))
        single = [
            w for w in words if len(tok(w.group(), add_special_tokens=False)["input_ids"]) == 1
        ]
        copies = masking.copies([MaskQuery(text, w.start(), w.end()) for w in single])
        pieces = len(tok(text, add_special_tokens=False)["input_ids"])
        assert copy_work(len(words), pieces, masking) >= sum(len(c.input_ids) for c in copies)
