"""Assembly of the dev server: a FastAPI app over a ``Store``, with the front door in front.

``create_app`` wires the route modules, the error mapping of the store's exceptions to the
answers the real API gives (422 ``{"detail": [...]}``, 404 ``{"detail": "..."}``), and the raw
ASGI front door (request log, fault injection, credentials). The app is a small ``FastAPI``
subclass only so that the front door sees the server's own ``send`` (see ``frontdoor``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from galileo_sessions._store import Store
from galileo_sessions.exceptions import IngestValidationError, NotFoundError
from galileo_sessions.server import (
    routes_admin,
    routes_auth,
    routes_logging,
    routes_otel,
    routes_projects,
)
from galileo_sessions.server.deps import store_of
from galileo_sessions.server.faults import FaultConfig, FaultInjector
from galileo_sessions.server.frontdoor import handle_http
from galileo_sessions.server.state import DEFAULT_REQUEST_LOG_SIZE, ServerState
from galileo_sessions.ui import build_router as build_ui_router

__all__ = ["DevServerApp", "create_app"]


class DevServerApp(FastAPI):
    """FastAPI with the front door wrapped around every HTTP request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state: ServerState = self.state.galileo
            await handle_http(scope, receive, send, state=state, inner=super().__call__)
        else:
            await super().__call__(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.galileo
    state.open_owned_store()
    try:
        yield
    finally:
        state.close_owned_store()


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IngestValidationError)
    return JSONResponse({"detail": jsonable_encoder(exc.detail)}, status_code=422)


async def _on_not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc) or "Not Found"}, status_code=404)


def create_app(store: Store | str | os.PathLike[str], *, api_key: str | None = None,
               faults: FaultConfig | None = None,
               request_log_size: int = DEFAULT_REQUEST_LOG_SIZE) -> FastAPI:
    """A Galileo-API-compatible app serving ``store`` (a ``Store``, or a path to open one).

    A store given by path is opened here and closed when the app shuts down; a ``Store``
    instance stays the caller's to close. ``api_key=None`` turns credential checks off.
    """
    if isinstance(store, (str, os.PathLike)):
        state = ServerState(Store(os.fspath(store)), api_key=api_key,
                            faults=FaultInjector(faults),
                            request_log_size=request_log_size, owns_store=True)
    else:
        state = ServerState(store, api_key=api_key, faults=FaultInjector(faults),
                            request_log_size=request_log_size)

    app = DevServerApp(
        title="galileo-sessions dev server",
        summary="A local, Galileo-API-compatible server over a SQLite store.",
        lifespan=_lifespan,
    )
    app.state.galileo = state
    app.add_exception_handler(IngestValidationError, _on_validation_error)
    app.add_exception_handler(NotFoundError, _on_not_found)

    routers: list[APIRouter] = [
        routes_auth.router,
        routes_projects.router,
        routes_logging.router,
        routes_admin.router,
        build_ui_router(store_of),  # the web view (galileo_sessions.ui): pages at / and /ui/
        routes_otel.router,  # POST /otel/traces (OTLP/HTTP, galileo-wire.md §12)
    ]
    for router in routers:
        app.include_router(router)
        state.route_table.extend(router.routes)
    return app
