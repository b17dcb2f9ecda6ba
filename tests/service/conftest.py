"""A real uvicorn server on 127.0.0.1 (free port), serving an app around one real Augmenter."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.settings import ServiceSettings


@pytest.fixture(scope="session")
def augmenter(tiny_mlm_dir: Path):
    """The real Augmenter (spaCy, packaged GloVe, tiny MLM), loaded once for all service tests."""
    from augment import AugmentConfig, Augmenter

    return Augmenter(AugmentConfig.build(mlm=str(tiny_mlm_dir), device="cpu"))


class LiveServer:
    """The service's own server (uvicorn with its deadlines and cap) in a thread, bound to a
    socket on a free loopback port."""

    def __init__(self, app: Any) -> None:
        from service.server import KdaugServer, bind, server_config

        self.app = app
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = KdaugServer(server_config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    @property
    def state(self):
        return self.app.state.service

    def start(self, until: str = "ready", timeout: float = 60) -> LiveServer:
        """Start, then wait until the status is `until` (ready, or failed for broken setups)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/healthz", timeout=2)
                if self.state.status == until:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"server not {until}: {self.state.describe()}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


ServeFactory = Callable[..., contextlib.AbstractContextManager[LiveServer]]


@pytest.fixture(scope="session")
def serve(augmenter) -> ServeFactory:
    """serve(**settings) -> context manager of a running LiveServer; `shared` (default) hands it
    the session's augmenter (passed through `wrap` if given), else the app loads its own."""
    from service.app import create_app

    @contextlib.contextmanager
    def run(
        shared: bool = True, until: str = "ready", wrap: Callable | None = None, **settings: Any
    ) -> Iterator[LiveServer]:
        settings.setdefault("warmup", False)
        settings.setdefault("drain_timeout_s", 10)
        given = (wrap(augmenter) if wrap else augmenter) if shared else None
        app = create_app(ServiceSettings(**settings), augmenter=given)
        server = LiveServer(app).start(until)
        try:
            yield server
        finally:
            server.stop()

    return run


def _metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture(scope="session")
def metric() -> Callable[..., float]:
    """metric(page, name, **labels): one sample's value in a Prometheus text page (0 if absent)."""
    return _metric


class Events:
    """Events a batcher reports (its listener), collected for a test thread to wait on."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        with self._cond:
            self.seen.append((kind, info))
            self._cond.notify_all()

    def count(self, kind: str, **match: Any) -> int:
        with self._cond:
            return sum(
                k == kind and all(i.get(a) == b for a, b in match.items()) for k, i in self.seen
            )

    def wait(self, kind: str, times: int = 1, timeout: float = 30, **match: Any) -> None:
        """Block until `kind` (with `match` in its info) has been seen `times` times."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.count(kind, **match) >= times, timeout)
        assert ok, f"{kind} x{times} {match} not reported in {timeout} s: {self.seen}"


class StepAugmenter:
    """The real augmenter, whose batches each wait for a permit the test hands out."""

    def __init__(self, augmenter) -> None:
        self.inner, self.config = augmenter, augmenter.config
        self.permits = threading.Semaphore(0)
        self.calls: list[list[str]] = []  # record ids of each batch, in order
        self.done = 0
        self._cond = threading.Condition()

    def versions(self):
        return self.inner.versions()

    @property
    def loaded_sources(self):
        return self.inner.loaded_sources

    def augment(self, records, params):
        with self._cond:
            self.calls.append([r.id for r in records])
            self._cond.notify_all()
        self.permits.acquire(timeout=60)
        try:
            return self.inner.augment(records, params)
        finally:
            with self._cond:
                self.done += 1
                self._cond.notify_all()

    def release(self, k: int = 1) -> None:
        self.permits.release(k)

    def wait_started(self, k: int, timeout: float = 30) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.calls) >= k, timeout)
        assert ok, f"{k} batches not started in {timeout} s: {self.calls}"

    def wait_done(self, k: int, timeout: float = 30) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.done >= k, timeout)
        assert ok, f"{k} batches not done in {timeout} s: {self.done}"


@pytest.fixture()
def events() -> Events:
    return Events()
