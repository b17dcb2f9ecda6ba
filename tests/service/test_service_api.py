"""POST /augment and the health, metrics and docs endpoints, over HTTP against a real server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from augment.config import SampleParams
from augment.records import Record

LIMITS = {"max_items": 8, "max_text_chars": 300, "max_n": 16, "max_body_bytes": 65_536}
SENTENCE = "The quiet film was a delight from start to finish."
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(serve):
    with serve(**LIMITS, batch_max_wait_ms=30) as live:
        yield live


def post(server, body, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/augment", json=body, timeout=30, **kwargs)


def test_texts_give_variants_with_provenance(server):
    r = post(server, {"texts": [SENTENCE, "A dull and tired story."], "n": 3, "seed": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [item["id"] for item in body["results"]] == ["0", "1"]
    assert body["variants"] == sum(len(i["variants"]) for i in body["results"])
    first = body["results"][0]["variants"]
    assert first[0] == {
        "id": "0", "variant": 0, "text_a": SENTENCE, "text_b": None, "label": None,
        "replacements": [],
    }  # fmt: skip
    assert 1 < len(first) <= 4
    for row in first[1:]:
        assert row["text_a"] != SENTENCE and row["replacements"]
        for rep in row["replacements"]:
            assert row["text_a"][rep["start"] : rep["end"]] == rep["replacement"]
            assert rep["source"] in ("mlm", "vectors") and rep["field"] == "a"


def test_pairs_labels_ids_and_options(server):
    body = {
        "pairs": [[SENTENCE, "It was a good movie."]],
        "labels": [1],
        "ids": ["q-17"],
        "n": 2,
        "fields": "b",
        "include_original": False,
        "sources": "vectors",
    }
    r = post(server, body)
    assert r.status_code == 200, r.text
    rows = r.json()["results"][0]["variants"]
    assert rows and all(v["variant"] > 0 for v in rows)
    for v in rows:
        assert v["id"] == "q-17" and v["label"] == "1" and v["text_a"] == SENTENCE
        assert {rep["field"] for rep in v["replacements"]} == {"b"}
        assert {rep["source"] for rep in v["replacements"]} == {"vectors"}


def test_same_seed_same_answer_as_the_library(server, augmenter):
    body = {"texts": [SENTENCE, "Rain fell over the old harbour town."], "n": 4, "seed": 3}
    a, b = post(server, body).json(), post(server, body).json()
    assert a == b
    params = SampleParams.from_config(augmenter.config, n=4, seed=3)
    records = [Record(str(i), t) for i, t in enumerate(body["texts"])]
    expected = [[v.to_row() for v in vs] for vs in augmenter.augment(records, params)]
    assert [item["variants"] for item in a["results"]] == expected


def test_concurrent_requests_merge_into_fewer_batches_with_the_same_answers(
    server, serve, metric, events
):
    from tests.service.conftest import StepAugmenter

    bodies = [{"texts": [f"{SENTENCE} Take {i}."], "n": 2 + i % 3, "seed": i} for i in range(16)]
    alone = [post(server, b).json() for b in bodies[:3]]
    with serve(**LIMITS, wrap=StepAugmenter) as live:
        live.state.batcher.listeners.append(events)
        step = live.state.augmenter

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
                sent = [asyncio.ensure_future(client.post("/augment", json=b)) for b in bodies]
                # all 16 admitted while the first batch holds the model: the rest merge
                await asyncio.to_thread(events.wait, "admitted", len(bodies))
                step.release(100)
                return await asyncio.gather(*sent)

        responses = asyncio.run(scenario())
        page = httpx.get(f"{live.url}/metrics").text
    assert all(r.status_code == 200 for r in responses)
    assert [r.json() for r in responses[:3]] == alone  # merging does not change answers
    assert 1 <= metric(page, "kdaug_batches_total") <= 2
    assert metric(page, "kdaug_batch_requests_sum") == len(bodies)


def test_metrics_count_requests_statuses_and_variants(server, metric):
    before = httpx.get(f"{server.url}/metrics").text
    ok = post(server, {"texts": [SENTENCE], "n": 2})
    post(server, {"texts": []})
    after = httpx.get(f"{server.url}/metrics").text
    for status, added in (("200", 1), ("422", 1)):
        key = {"route": "/augment", "status": status}
        assert (
            metric(after, "kdaug_requests_total", **key)
            - metric(before, "kdaug_requests_total", **key)
            == added
        )
    made = metric(after, "kdaug_variants_total") - metric(before, "kdaug_variants_total")
    assert made == ok.json()["variants"]
    count = metric(after, "kdaug_request_latency_seconds_count", route="/augment")
    assert count > metric(before, "kdaug_request_latency_seconds_count", route="/augment")
    assert "kdaug_queue_depth" in after and "kdaug_batch_records_bucket" in after


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": []}, "texts"),
        ({}, "texts"),
        ({"texts": ["a"], "pairs": [["a", "b"]]}, "texts"),
        ({"texts": "not a list"}, "texts"),
        ({"texts": [1, 2]}, "texts"),
        ({"pairs": [["only one"]]}, "pairs"),
        ({"texts": ["a"], "n": 17}, "n"),
        ({"texts": ["a"], "n": 0}, "n"),
        ({"texts": ["a"], "n": "3"}, "n"),
        ({"texts": ["a"], "n": True}, "n"),
        ({"texts": ["a"], "p": 1.5}, "p"),
        ({"texts": ["a"], "p": "0.5"}, "p"),
        ({"texts": ["a"], "p": True}, "p"),
        ({"texts": ["a"], "seed": "3"}, "seed"),
        ({"texts": ["a"], "include_original": "true"}, "include_original"),
        ({"texts": ["a"], "seed": 2**70}, "seed"),
        ({"texts": ["a"], "sources": "wordnet"}, "sources"),
        ({"texts": ["a"], "fields": "b"}, "fields"),
        ({"texts": ["a"], "labels": [1, 2]}, "labels"),
        ({"texts": ["a", "b"], "ids": ["x", "x"]}, "ids"),
        ({"texts": ["a"] * 9}, "texts"),
        ({"texts": ["a" * 301]}, "texts"),
        ({"texts": ["a"], "colour": "blue"}, "colour"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(server, body, field):
    r = post(server, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail and all(d["msg"] for d in detail)
    assert any(d["loc"][:2] == ["body", field] for d in detail), detail


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"texts": [""]}, ["body", "texts", 0]),
        ({"texts": ["a film", "   \t\n "]}, ["body", "texts", 1]),
        ({"texts": ["a", "b", "c", "\u0000\u0000"]}, ["body", "texts", 3]),
        ({"texts": [" \u0000 \u3000"]}, ["body", "texts", 0]),
        ({"pairs": [["a film", "it was good"], ["a film", " "]]}, ["body", "pairs", 1, 1]),
        ({"pairs": [["", "it was good"]]}, ["body", "pairs", 0, 0]),
    ],
)
def test_blank_texts_get_422_naming_the_item(server, body, loc):
    r = post(server, body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert [d["loc"] for d in detail] == [loc], detail
    assert "blank" in detail[0]["msg"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/json; charset=latin-1", "application/jsonx", "text/json"],
)  # fmt: skip
def test_bodies_not_sent_as_json_get_415(server, metric, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"texts": [SENTENCE], "n": 2}).encode()
    before = httpx.get(f"{server.url}/metrics").text
    r = httpx.post(f"{server.url}/augment", content=body, headers=headers, timeout=30)
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["detail"]
    after = httpx.get(f"{server.url}/metrics").text
    assert metric(after, "kdaug_batches_total") == metric(before, "kdaug_batches_total")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
def test_json_content_types_are_accepted(server, content_type):
    body = json.dumps({"texts": [SENTENCE], "n": 2}).encode()
    r = httpx.post(
        f"{server.url}/augment", content=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert r.status_code == 200, r.text


def test_readyz_names_the_models_without_their_paths(server, tiny_mlm_dir):
    r = httpx.get(f"{server.url}/readyz")
    assert r.status_code == 200
    ready = r.json()
    assert str(tiny_mlm_dir) not in r.text and str(tiny_mlm_dir.parent) not in r.text
    assert ready["models"]["mlm"] == tiny_mlm_dir.name
    fingerprint = ready["fingerprints"]["mlm"]
    assert len(fingerprint) == 12 and int(fingerprint, 16) >= 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"texts": ["caf\xe9 \xff\xfe"]}',
        b"\xff\xfe\x00{",
        b"",
        b'{"texts": ["a"',
        b"[1, 2]",
        b"null",
    ],
)
def test_bytes_that_are_not_json_or_not_utf8_get_422(server, raw):
    r = httpx.post(f"{server.url}/augment", content=raw, headers=JSON, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body"


def _raw_exchange(server, head: bytes, body: bytes) -> tuple[int, dict]:
    """Send `head` and `body` over a raw socket, then read the whole answer (the server closes).

    The body sent is only what the server must read before it answers, so that no byte is left
    unread when it closes: an HTTP client streaming megabytes on can instead meet a reset before
    it reads the 413, which is allowed by HTTP and says nothing about the server.
    """
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    payload = rest.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), json.loads(payload)


def test_oversize_bodies_get_413(server):
    # A declared length over the limit is refused before any of the body is read.
    head = (
        b"POST /augment HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n"
    )
    status, body = _raw_exchange(server, head, b"")
    assert status == 413 and "65536" in body["detail"]

    # Without Content-Length the bytes are counted while streaming: refused once they pass it.
    head = (
        b"POST /augment HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 10_000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(7))  # 70,000 bytes
    status, body = _raw_exchange(server, head, b'c\r\n{"texts": ["\r\n' + chunks)
    assert status == 413 and "limit" in body["detail"]


def test_a_client_gone_before_its_body_is_in_is_counted_as_499(serve):
    import socket
    import time
    from urllib.parse import urlsplit

    with serve(**LIMITS) as live:
        url = urlsplit(live.url)
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            head = b"POST /augment HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            sock.sendall(head + b'Content-Length: 100\r\n\r\n{"texts": [')
        labels = {"route": "/augment", "status": "499"}
        deadline = time.monotonic() + 30
        while not live.state.metrics.registry.get_sample_value("kdaug_requests_total", labels):
            assert time.monotonic() < deadline, "the request was not counted as 499"
            time.sleep(0.05)  # the count is the event: the middleware writes it as it ends


def test_health_ready_docs_and_method_errors(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["models"]["vectors"] == "glove-6b-50d"
    assert httpx.get(f"{server.url}/docs").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    about = spec["paths"]["/augment"]["post"]["description"]  # the limits of this server
    assert "at most 8 texts or pairs of at most 300 characters" in about
    assert "n at most 16" in about
    assert httpx.get(f"{server.url}/augment").status_code == 405
    assert httpx.get(f"{server.url}/nowhere").status_code == 404


def test_a_timeout_answers_503_with_retry_after(serve, metric):
    from tests.service.conftest import StepAugmenter

    with serve(wrap=StepAugmenter, request_timeout_s=0.2) as live:
        r = post(live, {"texts": [SENTENCE], "n": 2})  # its batch waits for a permit
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        assert "KDAUG_REQUEST_TIMEOUT_S" in r.json()["detail"]
        live.state.augmenter.release(10)
        page = httpx.get(f"{live.url}/metrics").text
        assert metric(page, "kdaug_rejected_total", reason="timeout") == 1


def test_a_full_queue_answers_503_with_retry_after(serve, events):
    from concurrent.futures import ThreadPoolExecutor

    from tests.service.conftest import StepAugmenter

    with serve(wrap=StepAugmenter, queue_max=1) as live:
        step = live.state.augmenter
        live.state.batcher.listeners.append(events)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post, live, {"texts": [SENTENCE], "n": 2})
            step.wait_started(1)  # admitted and at the model: the queue is full
            r = post(live, {"texts": [SENTENCE], "n": 2})
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            assert "retry later" in r.json()["detail"]
            assert events.count("admitted") == 1
            step.release(10)
            assert first.result(timeout=60).status_code == 200
        assert post(live, {"texts": [SENTENCE], "n": 2}).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        '{"texts": ["a fine film", "odd \\ud800 text"]}',
        '{"pairs": [["a film", "\\udfff"]]}',
        '{"texts": ["a fine film"], "ids": ["\\ud83d"]}',
        '{"texts": ["a fine film"], "labels": ["x\\udc00"]}',
    ],
)
def test_lone_surrogates_get_422_and_never_reach_a_batch(server, raw):
    # JSON may escape a lone surrogate; it has no UTF-8 form, so no tokenizer or writer takes
    # it. The body is refused as invalid JSON, so it cannot fail a batch of other clients' records.
    r = httpx.post(f"{server.url}/augment", content=raw.encode(), headers=JSON, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "json_invalid"
    assert post(server, {"texts": [SENTENCE], "n": 2}).status_code == 200


def test_wordnet_is_a_source_a_request_can_ask_for(serve, augmenter):
    from augment import AugmentConfig, Augmenter

    settings = {**augmenter.config.model_dump(), "sources": ["mlm", "vectors", "wordnet"]}
    with_wordnet = Augmenter(
        AugmentConfig.build(**settings),
        tagger=augmenter.tagger,
        mlm=augmenter.mlm,
        vectors=augmenter.vectors,
    )
    if "wordnet" not in with_wordnet.loaded_sources:
        pytest.skip("no WordNet database is installed")
    body = {"texts": [SENTENCE], "n": 4, "seed": 2, "sources": "wordnet"}
    with serve(**LIMITS, wrap=lambda _: with_wordnet) as live:
        r = post(live, body)
    assert r.status_code == 200, r.text
    rows = r.json()["results"][0]["variants"]
    assert len(rows) > 1 and {rep["source"] for v in rows for rep in v["replacements"]} == {
        "wordnet"
    }
    params = SampleParams.from_config(with_wordnet.config, n=4, seed=2, sources=("wordnet",))
    (expected,) = with_wordnet.augment([Record("0", SENTENCE)], params)
    assert rows == [v.to_row() for v in expected]  # the library's answer


class VectorsOnly:
    """The real augmenter, as a service started with `--mlm none` reports its sources."""

    def __init__(self, augmenter) -> None:
        self.inner, self.config = augmenter, augmenter.config
        self.loaded_sources = ("vectors",)

    def versions(self):
        return self.inner.versions()

    def augment(self, records, params):
        return self.inner.augment(records, params)


def test_sources_that_are_not_loaded_get_422(serve):
    with serve(**LIMITS, wrap=VectorsOnly) as live:
        r = post(live, {"texts": [SENTENCE], "n": 2, "sources": "mlm"})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail[0]["loc"] == ["body", "sources"] and "loaded: vectors" in detail[0]["msg"]
        assert post(live, {"texts": [SENTENCE], "n": 2, "sources": "both"}).status_code == 200
