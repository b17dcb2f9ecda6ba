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


async def _concurrent(url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await asyncio.gather(*(client.post("/augment", json=b) for b in bodies))


def test_concurrent_requests_merge_into_fewer_batches_with_the_same_answers(server, metric):
    bodies = [{"texts": [f"{SENTENCE} Take {i}."], "n": 2 + i % 3, "seed": i} for i in range(16)]
    alone = [post(server, b).json() for b in bodies[:3]]
    before = httpx.get(f"{server.url}/metrics").text
    responses = asyncio.run(_concurrent(server.url, bodies))
    after = httpx.get(f"{server.url}/metrics").text
    assert all(r.status_code == 200 for r in responses)
    assert [r.json() for r in responses[:3]] == alone  # merging does not change answers
    batches = metric(after, "kdaug_batches_total") - metric(before, "kdaug_batches_total")
    assert 1 <= batches < len(bodies)
    merged = metric(after, "kdaug_batch_requests_sum") - metric(before, "kdaug_batch_requests_sum")
    assert merged == len(bodies)


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
    r = httpx.post(f"{server.url}/augment", content=raw, timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body"


def test_oversize_bodies_get_413(server):
    big = json.dumps({"texts": ["word " * 2_000_000]}).encode()  # about 10 MB
    r = httpx.post(f"{server.url}/augment", content=big, timeout=30)
    assert r.status_code == 413
    assert "65536" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        yield b'{"texts": ["'
        for _ in range(100):
            yield b"x" * 10_000
        yield b'"]}'

    r = httpx.post(f"{server.url}/augment", content=chunks(), timeout=30)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_health_ready_docs_and_method_errors(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "alive"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["models"]["vectors"] == "glove-6b-50d"
    assert httpx.get(f"{server.url}/docs").status_code == 200
    spec = httpx.get(f"{server.url}/openapi.json").json()
    schema = spec["paths"]["/augment"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["schema"]["properties"]["n"]["anyOf"][0]["maximum"] == LIMITS["max_n"]
    assert httpx.get(f"{server.url}/augment").status_code == 405
    assert httpx.get(f"{server.url}/nowhere").status_code == 404


def test_timeouts_and_a_full_queue_answer_503_with_retry_after(serve):
    with serve(request_timeout_s=0.001) as live:
        r = post(live, {"texts": [SENTENCE], "n": 2})
        assert r.status_code == 503 and "Retry-After" in r.headers
        assert "KDAUG_REQUEST_TIMEOUT_S" in r.json()["detail"]
    with serve(queue_max=1, batch_max_wait_ms=0, micro_batching=False) as live:
        bodies = [{"texts": [f"{SENTENCE} {i}"] * 8, "n": 8} for i in range(24)]
        codes = [r.status_code for r in asyncio.run(_concurrent(live.url, bodies))]
        assert set(codes) <= {200, 503} and 503 in codes and 200 in codes
