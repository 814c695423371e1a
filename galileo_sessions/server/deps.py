"""Helpers shared by the route modules: the raw JSON body and calls into the store.

Validation lives in the store, because the library's embedded path calls the same ingest
functions without HTTP. Route handlers therefore take the body as plain JSON and pass it on
unchanged; the only checks made here are the ones that happen before a body *is* JSON (empty,
not JSON, not an object), answered in the exact shape FastAPI would give.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from galileo_sessions._store import Store
from galileo_sessions.exceptions import IngestValidationError
from galileo_sessions.server.state import ServerState

__all__ = ["json_body", "server_state", "store_of"]

def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.galileo
    return state


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or an ``IngestValidationError`` shaped like FastAPI's."""
    raw = await request.body()
    if not raw.strip():
        raise IngestValidationError(
            [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise IngestValidationError([{
            "type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error",
            "input": {}, "ctx": {"error": exc.msg},
        }]) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestValidationError([{
            "type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error",
            "input": {}, "ctx": {"error": str(exc)},
        }]) from None
    if not isinstance(value, dict):
        raise IngestValidationError([{
            "type": "model_attributes_type", "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": value,
        }])
    return value


def store_of(request: Request) -> Store:
    """The app's store; call its (blocking) methods through ``run_in_threadpool``."""
    return server_state(request).store
