"""Helpers of the tests that run `kdaug serve` in a child process."""

from __future__ import annotations

import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`argv` running in the repository root, its stdout and stderr one stream of text lines."""
    return subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 120) -> None:
    """Wait until the server at `url` reports ready on /readyz (its models are loaded); fail
    when `proc` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"serve exited early (exit code {proc.returncode})"
        assert time.monotonic() < deadline, f"serve not ready within {timeout:g} s"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def lines_of(proc: subprocess.Popen) -> queue.Queue:
    """The lines `proc` prints, as a queue filled by a daemon thread."""
    out: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def wait_line(lines: queue.Queue, text: str, timeout: float) -> str:
    """The first line holding `text` (fails when none is printed within `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"{text!r} not printed within {timeout} s: {seen[-20:]}")
