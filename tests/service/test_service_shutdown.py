"""SIGTERM while a model batch runs: `kdaug serve` exits within its drain deadline, and the
request still waiting is answered 503, in a real process."""

from __future__ import annotations

import os
import queue
import signal
import sys
import textwrap
import threading
import time

import httpx

from tests.service.support import REPO, free_port, lines_of, spawn, wait_line, wait_ready

DRAIN_S = 2.0

# `kdaug serve` itself, with an augmenter whose batches for texts starting with BLOCK never end
# (they say so on stdout), standing in for a batch far longer than the drain deadline.
SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import augment.augmenter as module

    class Blocking(module.Augmenter):
        def augment(self, records, params=None):
            if any(r.text_a.startswith("BLOCK") for r in records):
                print("BATCH STARTED", flush=True)
                threading.Event().wait()
            return super().augment(records, params)

    module.Augmenter = Blocking
    from kdaug.cli import main
    sys.exit(main(["serve", "--mlm", "none", "--device", "cpu", "--port", sys.argv[1]]))
    """
)


def test_sigterm_with_a_long_batch_running_exits_within_the_drain_deadline(tmp_path):
    script = tmp_path / "serve_blocking.py"
    script.write_text(SCRIPT, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "KDAUG_DRAIN_TIMEOUT_S": str(DRAIN_S),
        "KDAUG_WARMUP": "false",
        "KDAUG_LOG_LEVEL": "warning",
        "PYTHONPATH": str(REPO),
    }
    proc = spawn([sys.executable, str(script), str(port)], env)
    url = f"http://127.0.0.1:{port}"
    try:
        lines = lines_of(proc)
        wait_ready(proc, url)
        answers: queue.Queue = queue.Queue()

        def ask() -> None:
            body = {"texts": ["BLOCK the quiet film."], "n": 1}
            try:
                answers.put(httpx.post(f"{url}/augment", json=body, timeout=120).status_code)
            except httpx.HTTPError as exc:
                answers.put(repr(exc))

        threading.Thread(target=ask, daemon=True).start()
        wait_line(lines, "BATCH STARTED", 60)
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        proc.wait(timeout=DRAIN_S + 15)  # before: about 61 s, or never with this batch
        took = time.monotonic() - start
        assert proc.returncode in (0, -signal.SIGTERM)
        assert took < DRAIN_S + 10
        assert answers.get(timeout=10) == 503  # told the service is shutting down
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
