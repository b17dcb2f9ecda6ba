"""create_app(settings) -> FastAPI: the augmentation service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from kdaug import __version__
from service.deps import attach_state
from service.docs import add_docs, asset_paths
from service.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.routes import build_router
from service.settings import ServiceSettings
from service.state import ServiceState

if TYPE_CHECKING:
    from augment.augmenter import Augmenter

log = logging.getLogger(__name__)

DESCRIPTION = """Word-replacement augmentation on demand: POST texts or pairs to /augment and get
their variants with the provenance of every replaced word, the same rows that `kdaug augment`
writes (same seed and ids, same answer). Concurrent requests are merged into one model batch."""


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(e.get("loc", ["body"])), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    """Any error the routes did not answer: the same error body as the others (the traceback
    goes to the log)."""
    return JSONResponse({"detail": "internal error; the reason is in the server log"}, 500)


def create_app(
    settings: ServiceSettings | None = None, augmenter: Augmenter | None = None
) -> FastAPI:
    """The app; models load in the background at start-up (or `augmenter` is used as given)."""
    settings = settings or ServiceSettings()
    state = ServiceState(settings, augmenter)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        loading = asyncio.create_task(state.load(), name="kdaug-load")
        try:
            yield
        finally:
            # uvicorn has waited for the requests in flight; the batcher's drain deadline (set
            # when the shutdown began, see service.server) bounds whatever is left.
            loading.cancel()
            await state.batcher.stop(timeout_s=settings.drain_timeout_s)

    app = FastAPI(
        title="kdaug",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their assets from a CDN; add_docs serves ours
        redoc_url=None,
    )
    attach_state(app, state)
    router = build_router(state)
    app.include_router(router)
    add_docs(app, "/docs", "/redoc")
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        limit=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        metrics=state.metrics,
    )
    paths = {r.path for r in router.routes} | {"/docs", "/redoc", app.openapi_url} | asset_paths()
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, paths=paths)
    return app
