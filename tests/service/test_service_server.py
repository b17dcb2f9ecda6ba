"""The server's socket and start-up, with real sockets and a real `kdaug serve` process:
TCP_NODELAY on kept-alive connections, HEAD on the probes, the address in the log."""

from __future__ import annotations

import os
import re
import socket
import sys

import httpx
import pytest

from tests.service.support import REPO, lines_of, spawn, wait_line

BOUND = 20  # seconds a test waits for the server to act before it fails


def accepted_socket(live, client: socket.socket):
    """The server's side of `client`'s connection, found among the connections uvicorn holds."""
    here = client.getsockname()[:2]
    for conn in list(live.server.server_state.connections):
        if tuple(conn.client or ())[:2] == here:
            return conn.transport.get_extra_info("socket")
    raise AssertionError(f"no server connection from {here}")


def get(sock: socket.socket, path: str = "/healthz", method: str = "GET") -> bytes:
    """One request on a kept-alive connection; the whole response (headers and body)."""
    sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    if method == "HEAD":
        return head
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_kept_alive_connections_are_served_with_tcp_nodelay(serve):
    """Without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK hold each response
    on a kept-alive connection for about 40 ms."""
    with serve() as live:
        port = int(live.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
            for _ in range(3):  # the same connection, kept alive
                assert get(sock).startswith(b"HTTP/1.1 200")
            server_side = accepted_socket(live, sock)
            assert server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_the_probes_answers_like_get_without_a_body(serve, path):
    with serve() as live:
        got, head = httpx.get(live.url + path), httpx.head(live.url + path)
        assert (got.status_code, head.status_code) == (200, 200)
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        port = int(live.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
            assert get(sock, path, "HEAD").startswith(b"HTTP/1.1 200")
            assert get(sock, path).startswith(b"HTTP/1.1 200")  # nothing left over from HEAD
        doc = httpx.get(live.url + "/openapi.json").json()
        assert set(doc["paths"][path]) == {"get"}  # one operation per probe in the document


def test_serve_on_port_0_prints_the_address_it_listens_on():
    env = {**os.environ, "KDAUG_WARMUP": "false", "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "kdaug.cli", "serve", "--mlm", "none", "--device", "cpu"]
    proc = spawn([*argv, "--port", "0"], env)
    try:
        line = wait_line(lines_of(proc), "listening on http://", 120)
        url = re.search(r"listening on (http://127\.0\.0\.1:(\d+))\s*$", line)
        assert url and int(url.group(2)) > 0, line
        assert httpx.get(url.group(1) + "/healthz", timeout=BOUND).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)
