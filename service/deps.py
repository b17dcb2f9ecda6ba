"""The routes' dependencies: the service state of the app, bearer-key auth and the JSON body
check, as `Depends` providers and named `Annotated` aliases."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.state import ServiceState

if TYPE_CHECKING:
    from fastapi import FastAPI

bearer = HTTPBearer(auto_error=False, description="one of the keys in KDAUG_API_KEYS")


def attach_state(app: FastAPI, state: ServiceState) -> None:
    """Make `state` the service state of `app` (what `app_state` and `State` give back)."""
    app.state.service = state


def app_state(app: FastAPI) -> ServiceState:
    """The service state of an app built by `create_app`."""
    return app.state.service


def get_state(request: Request) -> ServiceState:
    return app_state(request.app)


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


JsonBody = Depends(require_json)
