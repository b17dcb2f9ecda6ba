"""HTTP routes: POST /augment, GET /healthz, /readyz, /metrics."""

# Without `from __future__ import annotations`: the body type of POST /augment is made per app
# (it carries the app's limits), and FastAPI reads a route's annotations as objects.

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import ClientDisconnect

from service.batching import QueueFullError, ShuttingDownError
from service.deps import Authorized, JsonBody, State
from service.schemas import AugmentResponse, ErrorResponse, ServiceStatus, request_body
from service.state import ServiceState


def unavailable(detail: str, retry_after: int) -> HTTPException:
    return HTTPException(503, detail=detail, headers={"Retry-After": str(retry_after)})


class RawJsonRequest(Request):
    """A request whose JSON body reaches the body's model as bytes, for pydantic's parser
    (`schemas.request_body`), and whose client leaving before the body is in ends it as 499."""

    async def json(self) -> Any:
        return await self.body()

    async def body(self) -> bytes:
        try:
            return await super().body()
        except ClientDisconnect:  # nobody to answer; 499 is what the metrics record
            raise HTTPException(499, detail="the client closed the connection") from None


class RawJsonRoute(APIRoute):
    """A route that hands its handler a RawJsonRequest (FastAPI's custom request classes)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def raw_json(request: Request) -> Response:
            return await handler(RawJsonRequest(request.scope, request.receive))

        return raw_json


def check_budget(state: ServiceState, work: int, size: int) -> None:
    """413 before any work when a request's work or estimated response is over its limit."""
    s = state.settings
    limits = (
        (
            "work",
            work,
            s.max_request_work,
            "this request is about {} units of model work (masked-LM tokens: each input's "
            "words times its length in tokens, summed), over the limit of {} "
            "(KDAUG_MAX_REQUEST_WORK)",
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


EXAMPLES = {
    "texts": {
        "summary": "single texts",
        "value": {"texts": ["the film was a delight"], "n": 3, "seed": 1},
    },
    "pairs": {
        "summary": "pairs, field b only",
        "value": {
            "pairs": [["a man plays a guitar", "a person makes music"]],
            "labels": ["entailment"],
            "n": 2,
            "fields": "b",
        },
    },
}
LIMITS = """Limits of this server: at most {max_items} texts or pairs of at most {max_text_chars}
characters each (KDAUG_MAX_ITEMS, KDAUG_MAX_TEXT_CHARS) and n at most {max_n} (KDAUG_MAX_N), else
422 naming the field; an estimated model work over {max_request_work} (KDAUG_MAX_REQUEST_WORK) or
response over {max_response_bytes} bytes (KDAUG_MAX_RESPONSE_BYTES): 413."""


def error(description: str) -> dict[str, Any]:
    """An OpenAPI response whose body is an ErrorResponse."""
    return {"model": ErrorResponse, "description": description}


def json_error(description: str) -> dict[str, Any]:
    """An ErrorResponse of a route whose own answer is not JSON (the model is documented by
    the routes that use `error`)."""
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def build_router(state: ServiceState) -> APIRouter:
    """The routes of one app, with its limits; bearer auth is part of them (and of the OpenAPI
    document) only when API keys are configured."""
    settings = state.settings
    router = APIRouter(route_class=RawJsonRoute)
    auth = [Authorized] if settings.api_keys else []
    no_key = "no API key, or a wrong one, was sent (send Authorization: Bearer KEY)"
    errors = {
        **({401: error(no_key)} if settings.api_keys else {}),
        408: error("the body did not arrive within KDAUG_BODY_TIMEOUT_S"),
        413: error(
            "the body is larger than KDAUG_MAX_BODY_BYTES, or the request's work or estimated "
            "response is over KDAUG_MAX_REQUEST_WORK or KDAUG_MAX_RESPONSE_BYTES"
        ),
        415: error("the body is not sent as Content-Type: application/json"),
        422: error("the body is not valid JSON or breaks the schema or a limit"),
        500: error("augmentation failed; the reason is in the server log"),
        503: error("not ready, queue full, shutting down or timed out; see Retry-After"),
    }
    status_docs = {200: {"model": ServiceStatus}, 503: {"model": ServiceStatus}}
    AugmentBody = Annotated[request_body(state.request_limits), Body(openapi_examples=EXAMPLES)]
    about = "Variants of each text or pair, with the provenance of every replaced word."

    @router.post(
        "/augment",
        operation_id="augment",
        response_model=AugmentResponse,
        dependencies=[*auth, JsonBody],
        responses=errors,  # type: ignore[arg-type]
        description=about + "\n\n" + " ".join(LIMITS.format(**settings.model_dump()).split()),
    )
    async def augment(request: Request, state: State, req: AugmentBody) -> Any:
        """Validate (422), estimate the work (413), queue and wait for the answer."""
        records, params = req.records(), req.params(state.config)
        costs = state.work(records, params)
        check_budget(state, sum(costs), req.response_bytes(params))
        if state.status != "ready":
            raise unavailable(f"the service is {state.status}: models are not ready", 5)
        try:
            job = state.batcher.enqueue(records, params, costs)
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
        except Exception:  # logged by the batcher
            raise HTTPException(
                500, detail="augmentation failed; the reason is in the server log"
            ) from None
        made = sum(len(v) for v in out)
        state.metrics.variants.inc(made)
        results = [
            {"id": rec.id, "variants": [v.to_row() for v in variants]}
            for rec, variants in zip(records, out, strict=True)
        ]
        return {"results": results, "variants": made}

    @router.get("/healthz", operation_id="healthz", response_model=None, responses=status_docs)
    async def healthz(state: State) -> JSONResponse:
        """Alive: 200 while the process serves (also while loading); 503 if loading failed."""
        if state.status != "failed":  # no model versions here: a liveness probe stays cheap
            return JSONResponse({"status": "alive"})
        return JSONResponse(state.describe(), status_code=503)  # status "failed", detail

    @router.get("/readyz", operation_id="readyz", response_model=None, responses=status_docs)
    async def readyz(state: State) -> JSONResponse:
        """Ready: 200 once the models are loaded and a warm-up batch has run."""
        return JSONResponse(state.describe(), status_code=200 if state.status == "ready" else 503)

    # HEAD on the probes, as load balancers and `curl -I` send it (uvicorn drops the body);
    # kept out of the OpenAPI document, where it would repeat the GET operations
    for path, probe in (("/healthz", healthz), ("/readyz", readyz)):
        router.add_api_route(
            path, probe, methods=["HEAD"], response_model=None, include_in_schema=False
        )

    @router.get(
        "/metrics",
        operation_id="metrics",
        dependencies=auth,
        response_class=PlainTextResponse,
        responses={401: json_error(no_key)} if settings.api_keys else {},  # type: ignore[dict-item]
    )
    async def metrics(state: State) -> Response:
        """Prometheus text format."""
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
