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


def unavailable(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(503, detail=detail, headers={"Retry-After": str(retry_after)})


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as {loc, msg, type}, located in the body; inputs are not echoed."""
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def build_router(request_schema: dict[str, Any]) -> APIRouter:
    """The routes of one app; `request_schema` documents the body with that app's limits."""
    router = APIRouter()
    errors = {
        401: {"description": "API keys are configured and none (or a wrong one) was sent"},
        413: {"description": "the body is larger than KDAUG_MAX_BODY_BYTES"},
        422: {"description": "the body is not valid JSON or breaks the schema or a limit"},
        503: {"description": "not ready, queue full, shutting down or timed out; see Retry-After"},
    }

    @router.post(
        "/augment",
        response_model=AugmentResponse,
        dependencies=[Authorized],
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema}},
            }
        },
    )
    async def augment(request: Request, state: State) -> dict[str, Any]:
        """Variants of each text or pair, with the provenance of every replaced word."""
        body = await request.body()
        try:
            req = state.request_model.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(validation_errors(exc)) from None
        problems = req.problems()
        if problems:
            raise RequestValidationError(problems)
        if state.status != "ready":
            raise unavailable(f"the service is {state.status}: models are not ready", 5)
        records, timeout = req.records(), state.settings.request_timeout_s
        try:
            out = await asyncio.wait_for(
                state.batcher.submit(records, req.params(state.config)), timeout
            )
        except QueueFullError as exc:
            state.metrics.rejected.labels("queue_full").inc()
            raise unavailable(f"too busy: {exc}; retry later", 1) from None
        except ShuttingDownError as exc:
            raise unavailable(str(exc), 5) from None
        except asyncio.TimeoutError:
            state.metrics.rejected.labels("timeout").inc()
            raise unavailable(
                f"no answer within {timeout:g} s (KDAUG_REQUEST_TIMEOUT_S)", 5
            ) from None
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
        body = {"status": "failed" if state.status == "failed" else "alive"}
        if state.error:
            body["detail"] = state.error
        return JSONResponse(body, status_code=503 if state.status == "failed" else 200)

    @router.get("/readyz")
    async def readyz(state: State) -> JSONResponse:
        """Ready: 200 once the models are loaded and a warm-up batch has run."""
        return JSONResponse(state.describe(), status_code=200 if state.status == "ready" else 503)

    @router.get("/metrics", dependencies=[Authorized], response_class=Response)
    async def metrics(state: State) -> Response:
        """Prometheus text format."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
