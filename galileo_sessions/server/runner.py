"""Running the dev server: ``cli_serve`` for people, ``ServerThread`` for tests.

Both bind the listening socket themselves before uvicorn starts. That gives the real port at
once when asked for port 0, prints the URL before the first request can arrive, and lets
``ServerThread`` stop uvicorn and start it again on the *same* port (with ``SO_REUSEADDR``), so
a test can kill the server in the middle of a run and bring it back where clients expect it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from galileo_sessions._store import Store
from galileo_sessions.server.app import create_app
from galileo_sessions.server.faults import FaultConfig

__all__ = ["DEFAULT_STORE_PATH", "ServerThread", "bind_socket", "cli_serve"]

DEFAULT_STORE_PATH = os.path.join(".galileo_sessions", "store.db")
_START_TIMEOUT_S = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0 picks a free one)."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def uvicorn_config(app: FastAPI, *, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # Our front door relies on uvicorn's h11 request cycle to drop connections cleanly.
        http="h11",
        ws="none",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        access_log=not quiet,
        # Tests leave the process's logging config alone; the CLI gets uvicorn's console logs.
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
        log_level="warning" if quiet else "info",
        timeout_graceful_shutdown=5,
    )


def serve_until_interrupted(app: FastAPI, sock: socket.socket, *, quiet: bool) -> None:
    """Run uvicorn on ``sock`` in this thread until Ctrl-C (the CLI commands' main loop).

    uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal: done, cleanly.
    """
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(uvicorn_config(app, quiet=quiet)).run(sockets=[sock])


def run_command_server(command: str, *, host: str, port: int, store_path: str, quiet: bool,
                       make_app: Callable[[Store], FastAPI],
                       banner: Callable[[str], str]) -> int:
    """The main loop of ``galileo-sessions serve`` and ``ui``: bind, open the store, serve until
    Ctrl-C, close. A port or store that cannot be opened ends in one line and exit status 1."""
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        print(f"galileo-sessions {command}: cannot bind {host}:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        store = Store(store_path)
    except Exception as exc:
        sock.close()
        print(f"galileo-sessions {command}: cannot open the local store {store_path}: {exc}",
              file=sys.stderr)
        return 1
    try:
        app = make_app(store)
        print(banner(url_of(host, sock.getsockname()[1])), flush=True)
        serve_until_interrupted(app, sock, quiet=quiet)
    finally:
        sock.close()
        store.close()
    return 0


class ServerThread:
    """The dev server on 127.0.0.1 in a background thread, for tests.

    ``store`` is a ``Store`` (left open on exit: it is the caller's) or a path (opened here and
    closed on ``close()``/exit). ``stop()`` then ``start()`` restarts on the same port with the
    same app, so the data, tokens, fault config and request log survive a restart.
    """

    def __init__(self, store: Store | str | os.PathLike[str], *, api_key: str | None = None,
                 faults: FaultConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0, app: FastAPI | None = None) -> None:
        if isinstance(store, (str, os.PathLike)):
            self.store: Store = Store(os.fspath(store))
            self._owns_store = True
        else:
            self.store = store
            self._owns_store = False
        # ``app`` serves something else over the same store (the web view's own runner).
        self.app = app if app is not None else create_app(self.store, api_key=api_key,
                                                          faults=faults)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return url_of(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ServerThread:
        """Start serving (again); blocks until uvicorn accepts connections."""
        if self.running:
            raise RuntimeError("server already running")
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(self.app, quiet=True))
        self._server = server
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"galileo-dev-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dev server did not start: {self._error!r}")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; the port is free again (and reusable by ``start``) on return."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # graceful shutdown took too long: cut the connections
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None

    def close(self) -> None:
        self.stop()
        if self._owns_store:
            self.store.close()
            self._owns_store = False

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start(); a thread must not die loudly
            self._error = exc
        finally:
            sock.close()


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    p = argparse.ArgumentParser(
        prog="galileo-sessions serve",
        description="Run a Galileo-API-compatible dev server over a local SQLite store.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=8088, help="port (default 8088; 0 = any free)")
    p.add_argument("--store", default=env.get("GALILEO_SESSIONS_STORE", DEFAULT_STORE_PATH),
                   help="SQLite store path (default $GALILEO_SESSIONS_STORE or %(default)s)")
    p.add_argument("--api-key", default=env.get("GALILEO_SESSIONS_SERVER_API_KEY"),
                   help="require this key (default $GALILEO_SESSIONS_SERVER_API_KEY; none = open)")
    p.add_argument("--fault-status", type=int, default=None,
                   help="answer this HTTP status to a fraction (--fault-rate) of writes")
    p.add_argument("--fault-rate", type=float, default=1.0,
                   help="fraction of writes that get --fault-status (default 1.0)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay added to each request")
    p.add_argument("--drop-rate", type=float, default=0.0,
                   help="fraction of writes whose connection is closed without an answer")
    p.add_argument("--retry-after", type=float, default=None,
                   help="Retry-After seconds sent with injected 429/503")
    p.add_argument("--fault-seed", type=int, default=None, help="seed for repeatable faults")
    p.add_argument("--quiet", action="store_true", help="no uvicorn logging")
    return p


def cli_serve(argv: list[str]) -> int:
    """``galileo-sessions serve``: run until interrupted; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig(
            status=args.fault_status, rate=args.fault_rate, latency_ms=args.latency_ms,
            drop_rate=args.drop_rate, retry_after=args.retry_after, seed=args.fault_seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    auth = "API key required" if args.api_key else "no auth"
    return run_command_server(
        "serve", host=args.host, port=args.port, store_path=args.store, quiet=args.quiet,
        make_app=lambda store: create_app(store, api_key=args.api_key or None, faults=faults),
        banner=lambda url: f"galileo-sessions dev server on {url} (store {args.store}, {auth})")
