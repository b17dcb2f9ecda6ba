"""The HTTP server around the app: uvicorn, with a deadline for request headers, a cap on open
connections, and a shutdown bounded by the drain deadline.

uvicorn has a keep-alive timeout but no deadline for the headers of a request: a client that
sends half a request line and stalls holds its connection forever, and enough of them exhaust
the process's file descriptors. `GuardedH11Protocol` answers such a client 408 and closes, and
refuses (503, closed) connections beyond the cap. `KdaugServer` starts the batcher's drain as
soon as shutdown begins, so requests still waiting when the deadline passes are answered 503
and the process exits on time even with a long model batch running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from kdaug.errors import KdaugError
from service.deps import app_state
from service.metrics import ServiceMetrics
from service.settings import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI


log = logging.getLogger(__name__)


def raw_response(status: int, reason: str, detail: str, *headers: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (written before h11 has a
    request to answer)."""
    body = json.dumps({"detail": detail}).encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header read deadline and a cap on open connections.

    The deadline runs from the connection's start, or from the first byte of each next request
    on a kept-alive connection, until the request's headers are complete. Subclasses made by
    `protocol_class` carry the settings.
    """

    header_timeout_s: float = 10.0
    max_connections: int = 512
    metrics: ServiceMetrics | None = None
    open_count: list[int] = [0]  # connections this server holds (one list per subclass)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._counted = False
        if self.open_count[0] >= self.max_connections:
            self._reject("connections")
            transport.write(
                raw_response(
                    503,
                    "Service Unavailable",
                    f"too many open connections (KDAUG_MAX_CONNECTIONS={self.max_connections})",
                    "retry-after: 1",
                )
            )
            transport.close()
            return
        self._counted = True
        self.open_count[0] += 1
        if self.metrics is not None:
            self.metrics.open_connections.set(self.open_count[0])
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if getattr(self, "_counted", False):
            self._counted = False
            self.open_count[0] -= 1
            if self.metrics is not None:
                self.metrics.open_connections.set(self.open_count[0])
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._arm()
        super().data_received(data)
        if not self._between_requests():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request at once
        if not self._between_requests():
            self._disarm()

    # the header deadline -----------------------------------------------------------------
    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None and self.header_timeout_s > 0:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._between_requests():
            return
        self._reject("header_timeout")
        detail = (
            f"the request headers did not arrive within {self.header_timeout_s:g} s "
            "(KDAUG_HEADER_TIMEOUT_S)"
        )
        self.transport.write(raw_response(408, "Request Timeout", detail))
        self.transport.close()

    def _reject(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels(reason).inc()


def protocol_class(settings: ServiceSettings, metrics: ServiceMetrics) -> type[H11Protocol]:
    """The protocol of one server: GuardedH11Protocol with these settings and metrics."""
    attrs = {
        "header_timeout_s": settings.header_timeout_s,
        "max_connections": settings.max_connections,
        "metrics": metrics,
        "open_count": [0],
    }
    return type("KdaugH11Protocol", (GuardedH11Protocol,), attrs)


def server_config(app: FastAPI, **uvicorn_options: Any) -> uvicorn.Config:
    """uvicorn's Config for the app, from the app's own settings (deadlines, cap, drain)."""
    state = app_state(app)
    settings = state.settings
    return uvicorn.Config(
        app,
        http=protocol_class(settings, state.metrics),
        ws="none",
        lifespan="on",
        timeout_keep_alive=settings.keep_alive_s,
        # a backstop: the batcher answers what is left at the drain deadline itself
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s) + 1,
        **uvicorn_options,
    )


class KdaugServer(uvicorn.Server):
    """uvicorn's server: the drain starts with the shutdown, and with `exit_on_failure` the
    server stops when loading or warming up the models fails (instead of serving 503s)."""

    def __init__(self, config: uvicorn.Config, exit_on_failure: bool = False) -> None:
        super().__init__(config)
        self.state = app_state(config.app)
        self.exit_on_failure = exit_on_failure

    async def on_tick(self, counter: int) -> bool:
        if self.exit_on_failure and self.state.status == "failed":
            return True
        return await super().on_tick(counter)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:  # uvicorn names the address only of a port it binds
            for sock in sockets:
                log.info("listening on %s", address(sock))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.state.batcher.close(self.state.settings.drain_timeout_s)
        await super().shutdown(sockets)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line KdaugError saying why not."""
    if not 0 <= port <= 65535:
        raise KdaugError(f"--port must be between 0 and 65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn binds
    # IPPROTO_TCP, as asyncio's own create_server makes it: asyncio sets TCP_NODELAY on the
    # connections it accepts only from a socket that says it is TCP. Without it, Nagle's
    # algorithm and the client's delayed ACK hold each kept-alive response for about 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, UnicodeError) as exc:
        sock.close()
        why = getattr(exc, "strerror", None) or exc
        raise KdaugError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket | Any) -> str:
    """The URL of a listening socket, with the port it really got (also for port 0)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(app: FastAPI, sock: socket.socket, **uvicorn_options: Any) -> None:
    """Serve the app on `sock` until a signal; a failure to load the models is a KdaugError."""
    server = KdaugServer(server_config(app, **uvicorn_options), exit_on_failure=True)
    server.run(sockets=[sock])
    state = app_state(app)
    if state.status == "failed":
        raise KdaugError(f"loading the models failed: {state.error}")
