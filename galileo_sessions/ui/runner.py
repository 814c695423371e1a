"""Serving the web view on its own: ``create_ui_app``, ``UiServer`` (tests) and ``cli_ui``.

``galileo-sessions serve`` also serves these pages (the dev server includes the same router);
``galileo-sessions ui`` runs only the pages, with no Galileo API routes, on 127.0.0.1 by
default: it is a local viewer of possibly private recorded data.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType

import uvicorn
from fastapi import FastAPI, Request

from galileo_sessions._store import DEFAULT_STORE_PATH, Store
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


def _bind(host: str, port: int) -> socket.socket:
    from galileo_sessions.server.runner import bind_socket

    return bind_socket(host, port)


def _config(app: FastAPI, *, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(app, http="h11", ws="none", lifespan="on", proxy_headers=False,
                          server_header=False, access_log=not quiet,
                          log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
                          log_level="warning" if quiet else "info",
                          timeout_graceful_shutdown=2)


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class UiServer:
    """The web view in a background thread on ``host:port`` (0 = a free port), for tests."""

    def __init__(self, store: Store | str | os.PathLike[str], *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self._owns_store = not isinstance(store, Store)
        self.store = Store(os.fspath(store)) if not isinstance(store, Store) else store
        self.app = create_ui_app(self.store)
        self.host, self.port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    def start(self) -> UiServer:
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(_config(self.app, quiet=True))
        self._server = server
        self._thread = threading.Thread(target=self._run, args=(server, sock), daemon=True,
                                        name=f"galileo-ui:{self.port}")
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the web view did not start")
            time.sleep(0.005)
        return self

    @staticmethod
    def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()

    def close(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(10)
        self._server = self._thread = None
        if self._owns_store:
            self.store.close()
            self._owns_store = False

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


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
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"galileo-sessions ui: cannot bind {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        return 1
    try:
        store = Store(path)
    except Exception as exc:
        sock.close()
        print(f"galileo-sessions ui: cannot open the local store {path}: {exc}",
              file=sys.stderr)
        return 1
    try:
        app = create_ui_app(store)
        print(f"galileo-sessions web view on {_url(args.host, sock.getsockname()[1])} "
              f"(store {path})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(_config(app, quiet=args.quiet)).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
    return 0
