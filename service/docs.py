"""Swagger UI (/docs) and ReDoc (/redoc) served with the app's own copies of their assets, so
that the pages work without a network; the assets come with the fastapi-offline package."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

ASSETS_URL = "/docs-assets"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
MISSING = (
    "the API docs' assets are not installed: pip install 'fastapi-offline>=1.7.7,<2' "
    "(the API itself and /openapi.json work without them)"
)


def assets_dir() -> Path | None:
    """The folder of the Swagger UI and ReDoc assets, or None when their package is missing."""
    try:
        folder = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return folder if all((folder / name).is_file() for name in ASSETS) else None


def asset_paths() -> set[str]:
    """URL paths of the assets (for the metrics' route names)."""
    return {f"{ASSETS_URL}/{name}" for name in ASSETS}


def add_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Swagger UI at `docs_url` and ReDoc at `redoc_url`, every asset from this server.

    The app must be made with docs_url=None and redoc_url=None (FastAPI's pages load theirs
    from a CDN). URLs are relative to the root path, so a proxy prefix keeps working.
    """
    folder = assets_dir()
    spec_url = app.openapi_url or "/openapi.json"
    if folder is None:
        log.warning(MISSING)

        @app.get(docs_url, include_in_schema=False)
        @app.get(redoc_url, include_in_schema=False)
        async def no_docs() -> JSONResponse:
            return JSONResponse({"detail": MISSING}, status_code=503)

        return
    app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")

    def page(
        url: str,
        name: str,
        render: Callable[..., HTMLResponse],
        assets: dict[str, str],
        **options: Any,
    ) -> None:
        """Serve `render`'s page at `url`, titled `name`; `assets`: its keyword -> asset file."""

        @app.get(url, include_in_schema=False, name=name.lower().replace(" ", "_"))
        async def docs_page(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return render(
                openapi_url=root + spec_url,
                title=f"{app.title} - {name}",
                **{key: f"{root}{ASSETS_URL}/{file}" for key, file in assets.items()},
                **options,
            )

    page(
        docs_url,
        "Swagger UI",
        get_swagger_ui_html,
        {
            "swagger_js_url": "swagger-ui-bundle.js",
            "swagger_css_url": "swagger-ui.css",
            "swagger_favicon_url": "favicon.png",
        },
        # no badge from the online validator: it would send the schema out
        swagger_ui_parameters={"validatorUrl": None},
    )
    page(
        redoc_url,
        "ReDoc",
        get_redoc_html,
        {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"},
        with_google_fonts=False,
    )
