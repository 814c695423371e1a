"""Per-app state of the dev server: the store, the authenticator, faults and the request log.

One ``ServerState`` hangs off ``app.state.galileo``. Keeping it in one object (rather than in
module globals) lets a test run several servers side by side, and lets ``ServerThread`` stop and
restart uvicorn around the same app without losing tokens, counters or the fault config.

The request log is a bounded ring buffer: tests assert on what a client really sent (headers,
bodies, retries) through ``GET /_admin/requests``, and a long-running dev server must not grow
without bound. Credentials are redacted before a record is stored.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute

from galileo_sessions._store import Store
from galileo_sessions.server.auth import Authenticator
from galileo_sessions.server.faults import FaultInjector

__all__ = ["REDACTED_FIELDS", "REDACTED_HEADERS", "RequestLog", "RequestRecord", "ServerState"]

#: Header names whose values never reach the request log.
REDACTED_HEADERS = frozenset(
    {"authorization", "galileo-api-key", "splunk-ao-api-key", "cookie", "set-cookie"}
)
#: Top-level body fields whose values never reach the request log (login bodies).
REDACTED_FIELDS = frozenset({"api_key", "password", "access_token", "refresh_token"})
#: Bodies above this size are kept as a truncated string.
MAX_RECORDED_BODY = 64 * 1024
DEFAULT_REQUEST_LOG_SIZE = 1000


@dataclass
class RequestRecord:
    """One request as the server saw it. ``status`` is None when the connection was dropped."""

    seq: int
    time: float
    method: str
    path: str
    query: str
    route: str
    headers: dict[str, str]
    body: Any
    status: int | None = None
    outcome: str = "pending"
    duration_ms: float = 0.0
    _started: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "route": self.route,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
        }


def decode_body(raw: bytes) -> Any:
    """The body as JSON when it parses, else as (possibly truncated) text; None when empty."""
    if not raw:
        return None
    if len(raw) <= MAX_RECORDED_BODY:
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return raw.decode("utf-8", "replace")
        if isinstance(value, dict):
            value = {k: "***" if k in REDACTED_FIELDS else v for k, v in value.items()}
        return value
    head = raw[:MAX_RECORDED_BODY].decode("utf-8", "replace")
    return f"{head}...[truncated {len(raw) - MAX_RECORDED_BODY} bytes]"


def redact_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        out[name] = "***" if name in REDACTED_HEADERS else raw_value.decode("latin-1")
    return out


class RequestLog:
    """Ring buffer of recent requests plus per-route and per-status counters."""

    def __init__(self, capacity: int = DEFAULT_REQUEST_LOG_SIZE) -> None:
        if capacity < 1:
            raise ValueError("request log capacity must be >= 1")
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=capacity)
        self._seq = 0
        self._by_route: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()

    def start(self, *, method: str, path: str, query: str, route: str,
              headers: dict[str, str], body: Any, keep: bool = True) -> RequestRecord:
        """Count a request; ``keep=False`` counts it without adding it to the ring buffer."""
        now = time.time()
        with self._lock:
            self._seq += 1
            record = RequestRecord(
                seq=self._seq, time=now, method=method, path=path, query=query, route=route,
                headers=headers, body=body, _started=time.perf_counter(),
            )
            if keep:
                self._records.append(record)
            self._by_route[f"{method} {route}"] += 1
        return record

    def finish(self, record: RequestRecord, outcome: str) -> None:
        with self._lock:
            record.outcome = outcome
            record.duration_ms = round((time.perf_counter() - record._started) * 1000.0, 3)
            self._by_status["dropped" if record.status is None else str(record.status)] += 1

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` records, oldest first."""
        with self._lock:
            records = list(self._records)
        if limit is not None:
            records = records[-limit:] if limit > 0 else []
        return [r.to_dict() for r in records]

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._seq,
                "by_route": dict(self._by_route),
                "by_status": dict(self._by_status),
            }

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._by_route.clear()
            self._by_status.clear()


class ServerState:
    """Everything a route handler needs, reachable as ``request.app.state.galileo``."""

    def __init__(self, store: Store, *, api_key: str | None, faults: FaultInjector,
                 request_log_size: int = DEFAULT_REQUEST_LOG_SIZE,
                 owns_store: bool = False) -> None:
        self.store = store
        self.auth = Authenticator(api_key)
        self.faults = faults
        self.requests = RequestLog(request_log_size)
        self.owns_store = owns_store
        self.store_closed = False
        #: Every served route, flat, so the front door can name a request's route template.
        self.route_table: list[BaseRoute] = []
        self.started_at = time.time()

    def open_owned_store(self) -> None:
        """Reopen a store this app opened itself and closed at a previous shutdown."""
        if self.owns_store and self.store_closed:
            self.store = Store(self.store.path)
            self.store_closed = False

    def close_owned_store(self) -> None:
        """Close the store if this app opened it; a store passed in belongs to the caller."""
        if self.owns_store and not self.store_closed:
            self.store.close()
            self.store_closed = True
