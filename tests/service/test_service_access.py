"""API keys, CORS, failed start-up and draining on shutdown, against real servers."""

from __future__ import annotations

import concurrent.futures
import threading
import time

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
    with serve(
        shared=False, until="failed", mlm=str(tmp_path / "missing-mlm"), device="cpu"
    ) as live:
        health = httpx.get(f"{live.url}/healthz")
        assert health.status_code == 503 and "missing-mlm" in health.json()["detail"]
        assert httpx.get(f"{live.url}/readyz").status_code == 503
        r = httpx.post(f"{live.url}/augment", json=BODY)
        assert r.status_code == 503 and r.headers["Retry-After"]


class GatedAugmenter:
    """The real augmenter, whose batches wait until the test opens the gate."""

    def __init__(self, augmenter) -> None:
        self.inner, self.config, self.gate = augmenter, augmenter.config, threading.Event()

    def versions(self):
        return self.inner.versions()

    def augment(self, records, params):
        self.gate.wait(timeout=30)
        return self.inner.augment(records, params)


def test_shutdown_answers_the_requests_already_in(serve):
    with serve(wrap=GatedAugmenter, micro_batching=False) as live:
        gated = live.state.augmenter
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(httpx.post, f"{live.url}/augment", json=BODY, timeout=30)
                for _ in range(4)
            ]
            deadline = time.monotonic() + 10
            while live.state.batcher.depth < 3 and time.monotonic() < deadline:
                time.sleep(0.005)  # one request at the gate, three waiting behind it
            assert live.state.batcher.depth == 3
            live.server.should_exit = True
            time.sleep(0.2)
            gated.gate.set()
            codes = [f.result().status_code for f in futures]
        assert codes == [200] * 4
