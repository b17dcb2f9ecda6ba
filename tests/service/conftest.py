"""A real uvicorn server on 127.0.0.1 (free port), serving an app around one real Augmenter."""

from __future__ import annotations

import contextlib
import socket
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
    """uvicorn in a thread, bound to a socket on a free loopback port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
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
