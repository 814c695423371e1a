"""The Galileo-API-compatible dev server (the ``[server]`` extra: FastAPI + uvicorn).

It serves a local SQLite store over the same routes as Galileo, so this library, Galileo's
official SDK and our test suite can be pointed at it: ``GALILEO_API_URL=http://127.0.0.1:8088``.
Validation is the store's (shared with the library's embedded path), credentials are checked
when it runs with an API key, and faults can be injected to exercise clients' error handling.

Only this package imports FastAPI and uvicorn; without the extra, importing it raises an
``ImportError`` that names the install command.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the galileo_sessions dev server needs its extra: pip install 'galileo-sessions[server]'"
    ) from exc

from galileo_sessions.server.app import create_app
from galileo_sessions.server.faults import FaultConfig
from galileo_sessions.server.runner import ServerThread, cli_serve

__all__ = ["FaultConfig", "ServerThread", "cli_serve", "create_app"]
