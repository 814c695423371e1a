"""API-key checking and the login token of the dev server.

Galileo accepts two credentials (galileo-wire.md §1.2): the ``Galileo-API-Key`` header, and a
bearer JWT obtained from ``POST /login/api_key``. The official SDK decodes that JWT without
verifying it and logs in again when ``exp`` is near, so the token must be JWT-shaped with a
far-away ``exp``. We sign it with HMAC-SHA256 under a secret derived from the API key: tokens
then survive a server restart with the same key (tests restart the server mid-run) and no token
table is needed. The key itself is never stored in a token, a log line or a response.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AUTH_EXEMPT_PATHS",
    "DEV_USER",
    "TOKEN_LIFETIME_S",
    "Authenticator",
]

#: Paths that never need credentials: the SDK probes them before it has a token.
AUTH_EXEMPT_PATHS = frozenset({"/healthcheck", "/login/api_key", "/ingest/healthz"})
#: 30 days: far enough that the official SDK never refreshes during a test or dev session.
TOKEN_LIFETIME_S = 30 * 24 * 3600

#: The one user of the dev server, as ``GET /current_user`` reports it.
DEV_USER: dict[str, Any] = {
    "id": "00000000-0000-4000-8000-000000000001",
    "email": "dev@localhost",
    "username": "dev",
    "first_name": "Local",
    "last_name": "Developer",
    "role": "admin",
    "auth_method": "email",
    "email_is_verified": True,
    "organization_id": "00000000-0000-4000-8000-000000000002",
    "organization_name": "galileo-sessions dev server",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}

_KEY_HEADERS = ("galileo-api-key", "splunk-ao-api-key")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Checks credentials against the configured key; ``api_key=None`` lets everything in."""

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key
        if api_key is None:
            self._secret = os.urandom(32)
        else:
            self._secret = hashlib.sha256(
                b"galileo-sessions dev server token\0" + api_key.encode("utf-8")
            ).digest()

    @property
    def enabled(self) -> bool:
        return self._api_key is not None

    def key_matches(self, candidate: str) -> bool:
        """Constant-time comparison with the configured key (True when no key is set)."""
        if self._api_key is None:
            return True
        return hmac.compare_digest(candidate.encode("utf-8"), self._api_key.encode("utf-8"))

    def issue_token(self, now: float | None = None) -> tuple[str, int]:
        """A signed HS256 JWT for the dev user and its lifetime in seconds."""
        issued = int(time.time() if now is None else now)
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "sub": DEV_USER["email"],
            "user_id": DEV_USER["id"],
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_S,
        }
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(payload, separators=(",", ":")).encode())
        )
        return f"{signing_input}.{self._sign(signing_input)}", TOKEN_LIFETIME_S

    def token_valid(self, token: str, now: float | None = None) -> bool:
        parts = token.split(".")
        if len(parts) != 3:
            return False
        signing_input = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(signing_input), parts[2]):
            return False
        try:
            payload = json.loads(_unb64(parts[1]))
        except ValueError:
            return False
        exp = payload.get("exp") if isinstance(payload, dict) else None
        current = time.time() if now is None else now
        return isinstance(exp, int) and exp > current

    def allows(self, path: str, headers: Mapping[str, str]) -> bool:
        """Whether a request to ``path`` with these (lower-cased) headers may go through."""
        if self._api_key is None or path in AUTH_EXEMPT_PATHS:
            return True
        for name in _KEY_HEADERS:
            key = headers.get(name)
            if key is not None and self.key_matches(key):
                return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_valid(token.strip())

    def _sign(self, signing_input: str) -> str:
        mac = hmac.new(self._secret, signing_input.encode("utf-8"), hashlib.sha256)
        return _b64(mac.digest())
