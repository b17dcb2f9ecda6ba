"""ASGI middleware: the request body's size limit and read deadline, and per-request metrics."""

from __future__ import annotations

import asyncio
import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import ServiceMetrics


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int, size: str) -> None:
        detail = f"request body {size} exceeds the limit of {limit} bytes (KDAUG_MAX_BODY_BYTES)"
        super().__init__(status_code=413, detail=detail)


class BodyTimeoutError(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        detail = (
            f"the request body did not arrive within {timeout_s:g} s of its headers "
            "(KDAUG_BODY_TIMEOUT_S)"
        )
        super().__init__(status_code=408, detail=detail, headers={"Connection": "close"})


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for bodies over `limit` bytes: by Content-Length before reading, else while streaming;
    408 (and the connection closed) when the whole body has not arrived `timeout_s` after the
    headers, however slowly it trickles in.

    The body is never buffered here; bytes are only counted as the app reads them.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        timeout_s: float | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            size = f"of {int(declared)} bytes"
            await _send_json(send, 413, BodyTooLargeError(self.limit, size).detail)
            return
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s
        seen = 0
        complete = False
        started = False

        async def guarded_receive() -> Message:
            nonlocal seen, complete
            if complete or deadline is None:  # the body is in: no deadline on what follows
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    if self.metrics is not None:
                        self.metrics.rejected.labels("body_timeout").inc()
                    raise BodyTimeoutError(self.timeout_s or 0.0) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLargeError(self.limit, "sent in chunks")
                complete = complete or not message.get("more_body", False)
            else:
                complete = True
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, watching_send)
        except (BodyTooLargeError, BodyTimeoutError) as exc:  # outside a route's handling
            if started:
                raise
            await _send_json(send, exc.status_code, exc.detail)


class MetricsMiddleware:
    """Counts requests by path and status, and observes their latency."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, paths: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths  # known paths; anything else is counted as "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            name = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
