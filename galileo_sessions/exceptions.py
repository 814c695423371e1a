"""The error tree of galileo_sessions.

Only two kinds of error ever reach user code: ``ConfigError`` from ``configure()`` (or the
first decorated call, when it configures from the environment), and ``DeliveryError`` in
reliable mode. The ``ApiError`` family belongs to the HTTP seam; the pipeline catches it and
turns it into counters, log lines or a ``DeliveryError``.

::

    GalileoSessionsError
    ├── ConfigError
    ├── DeliveryError            reliable mode: the server never confirmed a record
    ├── IngestValidationError    a request body the store (or dev server) refuses: 422
    ├── NotFoundError            a record the store (or dev server) does not have: 404
    └── ApiError                 HTTP layer
        ├── ApiStatusError       the server answered with a non-2xx status
        ├── ApiConnectionError   no answer: refused, reset, DNS
        └── ApiTimeoutError      no answer in time

No message, ``repr`` or attribute of these errors ever holds the API key.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiStatusError",
    "ApiTimeoutError",
    "ConfigError",
    "DeliveryError",
    "GalileoSessionsError",
    "IngestValidationError",
    "NotFoundError",
]


class GalileoSessionsError(Exception):
    """Base class of every error this library defines."""


class ConfigError(GalileoSessionsError, ValueError):
    """A configuration option or environment variable has a bad value; the message names it."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(f"{option}: {message}")


class DeliveryError(GalileoSessionsError):
    """Reliable mode: the server did not acknowledge a record within ``reliable_timeout``.

    The record stays in the spool and is replayed by the next start.
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 server_message: str | None = None) -> None:
        self.status_code = status_code
        self.server_message = server_message
        super().__init__(message)


class IngestValidationError(GalileoSessionsError):
    """A request body failed validation. ``detail`` has FastAPI's 422 shape.

    Each item is ``{"loc": ["body", ...path], "msg": str, "type": str}``; ``str(err)`` names the
    first offending field, e.g. ``body.traces.0.spans.1.type: ...``.
    """

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        self.detail = detail
        first = detail[0] if detail else {"loc": ["body"], "msg": "invalid body"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
        super().__init__(f"{where}: {first.get('msg', 'invalid')}{more}")


class NotFoundError(GalileoSessionsError, LookupError):
    """The store has no record with that id."""


class ApiError(GalileoSessionsError):
    """Base of the errors raised by the HTTP seam (``galileo_sessions._client``)."""

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None) -> None:
        self.method = method
        self.url = url
        super().__init__(message)


class ApiStatusError(ApiError):
    """The server answered with a non-2xx status."""

    def __init__(self, message: str, *, status_code: int, body: Any = None,
                 retry_after: float | None = None, method: str | None = None,
                 url: str | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after
        super().__init__(message, method=method, url=url)


class ApiConnectionError(ApiError):
    """The request never got an answer: connection refused or reset, DNS failure."""


class ApiTimeoutError(ApiConnectionError):
    """The server did not answer within the timeout."""
