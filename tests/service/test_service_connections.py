"""Read deadlines for request headers and bodies, and the cap on open connections, tested with
raw sockets against a real server on loopback."""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

BOUND = 20  # seconds a test waits for the server to act before it fails


def connect(live) -> socket.socket:
    port = int(live.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=BOUND)


def read_until_closed(sock: socket.socket, timeout: float = BOUND) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def gauge(live, name: str = "kdaug_open_connections", **labels: str) -> float:
    return live.state.metrics.registry.get_sample_value(name, labels or None) or 0.0


def wait_for(predicate, what: str, timeout: float = BOUND) -> None:
    """Wait for a state the server reports (a metric) to hold, within a bound."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reported within {timeout} s: {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def strict(serve):
    with serve(header_timeout_s=0.5, body_timeout_s=1.0) as live:
        yield live


@pytest.mark.parametrize(
    "sent", [b"", b"POST /augment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"], ids=["none", "half"]
)
def test_a_client_that_stalls_before_its_headers_end_is_closed_with_408(strict, sent):
    before = gauge(strict, "kdaug_rejected_total", reason="header_timeout")
    with connect(strict) as sock:
        sock.sendall(sent)
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408"), data
    after = gauge(strict, "kdaug_rejected_total", reason="header_timeout")
    assert after == before + 1


def test_a_kept_alive_connection_that_stalls_in_its_next_headers_is_closed(strict):
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(BOUND)
        first = b""
        while not first.endswith(b'{"status":"alive"}'):  # the whole first response
            chunk = sock.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200"), first
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408"), data


def test_a_body_that_does_not_arrive_in_time_gets_408(strict):
    head = (
        b"POST /augment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    with connect(strict) as sock:
        sock.sendall(head + b'{"texts": ["')
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b"KDAUG_BODY_TIMEOUT_S" in data
    assert gauge(strict, "kdaug_rejected_total", reason="body_timeout") >= 1


def test_a_body_that_trickles_in_gets_408_at_the_deadline(strict):
    head = (
        b"POST /augment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    with connect(strict) as sock:
        sock.sendall(head)
        answered = False
        for _ in range(int(BOUND / 0.05)):  # one byte every 50 ms: 100 KB would take 80 min
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                answered = True
                break
            sock.sendall(b" ")
        assert answered, "no answer while the body trickled in"
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408"), data


def test_requests_inside_the_deadlines_are_served(strict):
    r = httpx.post(f"{strict.url}/augment", json={"texts": ["A calm sea."], "n": 1}, timeout=30)
    assert r.status_code == 200, r.text


def test_open_connections_are_capped(serve):
    with serve(max_connections=4, header_timeout_s=60) as live:
        wait_for(lambda: gauge(live) == 0, "no connection open")
        held = [connect(live) for _ in range(4)]
        try:
            wait_for(lambda: gauge(live) == 4, "four connections open")
            extra = [connect(live) for _ in range(6)]
            for sock in extra:  # each refused at once, with a 503
                with sock:
                    assert read_until_closed(sock).startswith(b"HTTP/1.1 503")
            assert gauge(live) == 4
            assert gauge(live, "kdaug_rejected_total", reason="connections") == 6
            held.pop().close()
            wait_for(lambda: gauge(live) == 3, "a connection closed")
            assert httpx.get(f"{live.url}/healthz", timeout=BOUND).status_code == 200
        finally:
            for sock in held:
                sock.close()
