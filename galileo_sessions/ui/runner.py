"""Serving the web view on its own: ``create_ui_app``, ``UiServer`` (tests) and ``cli_ui``.

``galileo-sessions serve`` also serves these pages (the dev server includes the same router);
``galileo-sessions ui`` runs only the pages, with no Galileo API routes, on 127.0.0.1 by
default: it is a local viewer of possibly private recorded data.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request

from galileo_sessions._store import DEFAULT_STORE_PATH, Store
from galileo_sessions.server.runner import (
    ServerThread,
    run_command_server,
)
from galileo_sessions.ui.routes import build_router

__all__ = ["DEFAULT_UI_PORT", "UiServer", "cli_ui", "create_ui_app"]

DEFAULT_UI_PORT = 8089
_START_TIMEOUT_S = 10.0


def _store_of(request: Request) -> Store:
    store: Store = request.app.state.ui_store
    return store


def create_ui_app(store: Store) -> FastAPI:
    """A FastAPI app serving only the web view over ``store`` (which stays the caller's)."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(title="galileo-sessions web view", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.ui_store = store
    app.include_router(build_router(_store_of))
    return app


class UiServer(ServerThread):
    """The web view in a background thread on ``host:port`` (0 = a free port), for tests.

    The dev server's runner, serving only the pages: same start, stop and restart behaviour.
    """

    def __init__(self, store: Store | str | os.PathLike[str], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        owned = not isinstance(store, Store)
        opened = Store(os.fspath(store)) if not isinstance(store, Store) else store
        super().__init__(opened, host=host, port=port, app=create_ui_app(opened))
        self._owns_store = owned


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="galileo-sessions ui",
                                description="Browse the local store's sessions and traces.")
    p.add_argument("--store", metavar="PATH", default=None,
                   help=f"local store file (default: $GALILEO_SESSIONS_STORE or "
                        f"{DEFAULT_STORE_PATH})")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_UI_PORT,
                   help=f"port (default {DEFAULT_UI_PORT}; 0 = any free port)")
    p.add_argument("--quiet", action="store_true", help="no request logging")
    return p


def cli_ui(argv: list[str]) -> int:
    """``galileo-sessions ui``: serve the web view until interrupted."""
    args = parser().parse_args(argv)
    path = args.store or os.environ.get("GALILEO_SESSIONS_STORE") or DEFAULT_STORE_PATH
    if not os.path.exists(path):
        print(f"galileo-sessions ui: no local store at {path} yet; it will be created, and "
              "the pages fill in as your program records sessions there.", file=sys.stderr)
    return run_command_server(
        "ui", host=args.host, port=args.port, store_path=path, quiet=args.quiet,
        make_app=create_ui_app,
        banner=lambda url: f"galileo-sessions web view on {url} (store {path})")
