"""API keys, CORS, failed start-up and draining on shutdown, against real servers."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

KEYS = ["alpha-key", "beta-key"]
BODY = {"texts": ["The quiet film was a delight from start to finish."], "n": 2}


@pytest.fixture(scope="module")
def locked(serve):
    with serve(api_keys=KEYS, cors_origins=["https://label.example"]) as live:
        yield live


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic alpha-key"},
     {"Authorization": "Bearer"}, {"Authorization": "Bearer alpha-key-and-more"}],
)  # fmt: skip
def test_requests_without_a_valid_key_get_401(locked, headers):
    r = httpx.post(f"{locked.url}/augment", json=BODY, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]
    assert httpx.get(f"{locked.url}/metrics", headers=headers).status_code == 401


def test_auth_comes_before_body_checks(locked):
    assert httpx.post(f"{locked.url}/augment", json={"texts": []}).status_code == 401


@pytest.mark.parametrize("key", KEYS)
def test_each_configured_key_is_accepted(locked, key):
    auth = {"Authorization": f"Bearer {key}"}
    r = httpx.post(f"{locked.url}/augment", json=BODY, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{locked.url}/metrics", headers=auth).status_code == 200


def test_health_and_docs_stay_open(locked):
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert httpx.get(f"{locked.url}{path}").status_code == 200, path


def test_cors_preflight_allows_the_configured_origin_only(locked):
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = httpx.options(f"{locked.url}/augment", headers={"Origin": "https://label.example", **ask})
    assert ok.headers["access-control-allow-origin"] == "https://label.example"
    other = httpx.options(
        f"{locked.url}/augment", headers={"Origin": "https://evil.example", **ask}
    )
    assert "access-control-allow-origin" not in other.headers


def test_a_model_that_cannot_load_makes_health_fail_and_requests_503(serve, tmp_path):
    missing = tmp_path / "missing-mlm"
    with serve(shared=False, until="failed", mlm=str(missing), device="cpu") as live:
        health = httpx.get(f"{live.url}/healthz")
        assert health.status_code == 503 and "the server log" in health.json()["detail"]
        ready = httpx.get(f"{live.url}/readyz")
        assert ready.status_code == 503
        for page in (health.text, ready.text):  # no filesystem path to anonymous clients
            assert str(tmp_path) not in page and "missing-mlm" not in page
        assert "missing-mlm" in live.state.error  # the full reason is logged and kept
        r = httpx.post(f"{live.url}/augment", json=BODY)
        assert r.status_code == 503 and r.headers["Retry-After"]


def test_shutdown_answers_the_requests_already_in(serve, events):
    from tests.service.conftest import StepAugmenter

    with serve(wrap=StepAugmenter, micro_batching=False) as live:
        step = live.state.augmenter
        live.state.batcher.listeners.append(events)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(httpx.post, f"{live.url}/augment", json=BODY, timeout=60)
                for _ in range(4)
            ]
            events.wait("admitted", 4)  # one request at the model, three waiting behind it
            step.wait_started(1)
            live.server.should_exit = True
            events.wait("closing")  # the server is draining: no new work is taken in
            step.release(10)
            codes = [f.result(timeout=60).status_code for f in futures]
        assert codes == [200] * 4
        assert len(step.calls) == 4
