"""Health, login and current-user routes: what a Galileo client calls before it logs anything.

The official SDK runs ``GET /healthcheck``, probes ``GET /ingest/healthz`` (a 404 makes it use
its standard client, the one that talks to the routes we serve), exchanges its API key for a
JWT at ``POST /login/api_key`` and validates it with ``GET /current_user``
(galileo-wire.md §1.1, §1.2, §9.6).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from galileo_sessions.exceptions import IngestValidationError
from galileo_sessions.server.auth import DEV_USER
from galileo_sessions.server.deps import json_body, server_state

__all__ = ["router"]

API_VERSION = "v2"

router = APIRouter()


@router.get("/healthcheck")
async def healthcheck() -> dict[str, Any]:
    return {"api_version": API_VERSION, "message": "ok", "server": "galileo-sessions-dev"}


@router.get("/ingest/healthz")
async def ingest_healthz() -> JSONResponse:
    # The Go "ingest service" fast path is not served: answering 404 here makes the official
    # SDK fall back to its standard client and the /v2 routes below.
    return JSONResponse({"detail": "The ingest service is not available"}, status_code=404)


@router.post("/login/api_key")
async def login_api_key(request: Request) -> Any:
    body = await json_body(request)
    api_key = body.get("api_key")
    if not isinstance(api_key, str):
        raise IngestValidationError([{
            "type": "missing" if "api_key" not in body else "string_type",
            "loc": ["body", "api_key"],
            "msg": "Field required" if "api_key" not in body else "Input should be a valid string",
            "input": body if "api_key" not in body else api_key,
        }])
    auth = server_state(request).auth
    if not auth.key_matches(api_key):
        return JSONResponse({"detail": "Invalid API key"}, status_code=401)
    token, lifetime = auth.issue_token()
    return {"access_token": token, "token_type": "bearer", "expires_in": lifetime}


@router.get("/current_user")
async def current_user() -> dict[str, Any]:
    return dict(DEV_USER)
