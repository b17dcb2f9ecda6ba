"""HTTP routes: POST /augment, GET /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from service.batching import QueueFullError, ShuttingDownError
from service.schemas import AugmentResponse
from service.state import ServiceState

bearer = HTTPBearer(auto_error=False, description="one of the keys in KDAUG_API_KEYS")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]


def require_key(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 unless auth is off or the bearer token is a configured key (constant-time compare)."""
    if not state.api_keys:
        return
    token = credentials.credentials.encode("utf-8", "replace") if credentials else b""
    match = False
    for key in state.api_keys:  # compare against every key: time does not depend on which
        match |= hmac.compare_digest(token, key)
    if not match:
        raise HTTPException(
            401,
            detail="missing or invalid API key: send the header Authorization: Bearer KEY",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authorized = Depends(require_key)


def json_content_type(value: str | None) -> bool:
    """Is `value` application/json, with at most a utf-8 charset parameter?"""
    if not value:
        return False
    media, *params = (part.strip() for part in value.split(";"))
    if media.lower() != "application/json":
        return False
    for param in params:
        key, _, val = param.partition("=")
        if param and (key.strip().lower(), val.strip().strip('"').lower()) not in (
            ("charset", "utf-8"),
            ("charset", "utf8"),
        ):
            return False
    return True


def require_json(request: Request, state: State) -> None:
    """415 unless the body is declared JSON: a browser can send text/plain or a form
    cross-site without a preflight, but not application/json."""
    value = request.headers.get("content-type")
    if not json_content_type(value):
        state.metrics.rejected.labels("media_type").inc()
        raise HTTPException(
            415,
            detail=f"send the body as Content-Type: application/json (UTF-8), not {value!r}"
            if value
            else "send the body as Content-Type: application/json (UTF-8)",
        )


def unavailable(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(503, detail=detail, headers={"Retry-After": str(retry_after)})


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as {loc, msg, type}, located in the body; inputs are not echoed."""
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def check_budget(state: ServiceState, work: int, size: int) -> None:
    """413 before any work when a request's work or estimated response is over its limit."""
    s = state.settings
    limits = (
        (
            "work",
            work,
            s.max_request_work,
            "this request is {} units of work (words x n, summed "
            "over its inputs), over the limit of {} (KDAUG_MAX_REQUEST_WORK)",
        ),
        (
            "response_size",
            size,
            s.max_response_bytes,
            "the response would be about {} bytes, over the limit of {} (KDAUG_MAX_RESPONSE_BYTES)",
        ),
    )
    for reason, value, limit, what in limits:
        if value > limit:
            state.metrics.rejected.labels(reason).inc()
            detail = what.format(value, limit) + ": send fewer or shorter texts, or a smaller n"
            raise HTTPException(413, detail=detail)


def check_sources_loaded(state: ServiceState, sources: tuple[str, ...]) -> None:
    """422 when none of the requested candidate sources is loaded in this service: the answer
    would hold the originals only, which looks like success."""
    loaded = state.augmenter.loaded_sources if state.augmenter is not None else ()
    if sources and not set(sources) & set(loaded):
        raise RequestValidationError(
            [
                {
                    "loc": ["body", "sources"],
                    "msg": f"sources {list(sources)} are not loaded in this service "
                    f"(loaded: {', '.join(loaded) or 'none'})",
                    "type": "value_error",
                }
            ]
        )


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def wait_for_job(state: ServiceState, job: asyncio.Future, request: Request) -> str:
    """Wait for a job's answer ("done"), the request timeout ("timeout") or the client leaving
    ("disconnect"); in the last two the job is cancelled, so its remaining records never run."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait(
            {job, watcher},
            timeout=state.settings.request_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
    except asyncio.CancelledError:  # the server gave up on this request
        state.batcher.cancel(job, "cancelled")
        raise
    finally:
        watcher.cancel()
    if job in done:
        return "done"
    reason = "disconnect" if watcher in done else "timeout"
    state.metrics.rejected.labels(reason).inc()
    state.batcher.cancel(job, reason)
    return reason


def build_router(request_schema: dict[str, Any]) -> APIRouter:
    """The routes of one app; `request_schema` documents the body with that app's limits."""
    router = APIRouter()
    errors = {
        401: {"description": "API keys are configured and none (or a wrong one) was sent"},
        408: {"description": "the body did not arrive within KDAUG_BODY_TIMEOUT_S"},
        413: {
            "description": "the body is larger than KDAUG_MAX_BODY_BYTES, or the request's "
            "work or estimated response is over KDAUG_MAX_REQUEST_WORK or "
            "KDAUG_MAX_RESPONSE_BYTES"
        },
        415: {"description": "the body is not sent as Content-Type: application/json"},
        422: {"description": "the body is not valid JSON or breaks the schema or a limit"},
        503: {"description": "not ready, queue full, shutting down or timed out; see Retry-After"},
    }

    @router.post(
        "/augment",
        response_model=AugmentResponse,
        dependencies=[Authorized, Depends(require_json)],
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema}},
            }
        },
    )
    async def augment(request: Request, state: State) -> Any:
        """Variants of each text or pair, with the provenance of every replaced word."""
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=499)
        try:
            req = state.request_model.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(validation_errors(exc)) from None
        problems = req.problems()
        if problems:
            raise RequestValidationError(problems)
        records, params = req.records(), req.params(state.config)
        check_budget(state, *req.cost(params))
        if state.status != "ready":
            raise unavailable(f"the service is {state.status}: models are not ready", 5)
        check_sources_loaded(state, params.sources)
        try:
            job = state.batcher.enqueue(records, params)
        except QueueFullError as exc:
            state.metrics.rejected.labels("queue_full").inc()
            raise unavailable(f"too busy: {exc}; retry later", 1) from None
        except ShuttingDownError as exc:
            raise unavailable(str(exc), 5) from None
        outcome = await wait_for_job(state, job, request)
        if outcome == "disconnect":  # nobody to answer; 499 is what the metrics record
            return Response(status_code=499)
        if outcome == "timeout":
            timeout = state.settings.request_timeout_s
            raise unavailable(f"no answer within {timeout:g} s (KDAUG_REQUEST_TIMEOUT_S)", 5)
        try:
            out = job.result()
        except ShuttingDownError as exc:
            raise unavailable(str(exc), 5) from None
        made = sum(len(v) for v in out)
        state.metrics.variants.inc(made)
        results = [
            {"id": rec.id, "variants": [v.to_row() for v in variants]}
            for rec, variants in zip(records, out, strict=True)
        ]
        return {"results": results, "variants": made}

    @router.get("/healthz")
    async def healthz(state: State) -> JSONResponse:
        """Alive: 200 while the process serves (also while loading); 503 if loading failed."""
        if state.status != "failed":  # no model versions here: a liveness probe stays cheap
            return JSONResponse({"status": "alive"})
        return JSONResponse(state.describe(), status_code=503)  # status "failed", detail

    @router.get("/readyz")
    async def readyz(state: State) -> JSONResponse:
        """Ready: 200 once the models are loaded and a warm-up batch has run."""
        return JSONResponse(state.describe(), status_code=200 if state.status == "ready" else 503)

    @router.get("/metrics", dependencies=[Authorized], response_class=Response)
    async def metrics(state: State) -> Response:
        """Prometheus text format."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
