"""The test kit: capture what would be sent, deterministically, with no backend.

``with gs.testing.capture() as cap:`` installs a pipeline that delivers at once into memory,
with sequential ids and a fixed clock that both restart at each ``capture()``, so the same
program always produces the same request bodies. ``cap.requests`` holds those bodies as
``{"route": ..., "body": ...}``; ``cap.sessions`` and ``cap.traces`` are the session-create
bodies (with the id the fake server gave) and the trace trees, as plain data to assert on.
Every body is checked by the same validator as the local store and the dev server.

The ``gs_capture`` pytest fixture (``galileo_sessions.pytest_plugin``) yields a ``Capture``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import _clock, _ids, _runtime
from ._config import Settings
from ._exporter import Route, Target
from ._pipeline.pipeline import Pipeline

__all__ = ["LOG_STREAM_ID", "PROJECT_ID", "Capture", "MemoryExporter", "capture"]

PROJECT_ID = "00000000-0000-4000-8000-100000000000"
LOG_STREAM_ID = "00000000-0000-4000-8000-200000000000"


@dataclass
class Capture:
    """What a ``capture()`` block sent. Lists grow as records are delivered."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)

    def trace_names(self) -> list[str]:
        return [str(t.get("name")) for t in self.traces]

    def session_of(self, trace: dict[str, Any]) -> str | None:
        """The session id a captured trace was sent with."""
        return trace.get("_session_id")

    def clear(self) -> None:
        self.requests.clear()
        self.sessions.clear()
        self.traces.clear()
        self.spans.clear()


class MemoryExporter:
    """An ``Exporter`` that validates each body and keeps it, like a tiny fake server."""

    kind = "memory"

    def __init__(self, cap: Capture) -> None:
        self.cap = cap
        self._lock = threading.Lock()
        self._by_key: dict[str, str] = {}

    def resolve_target(self) -> Target:
        return Target(PROJECT_ID, log_stream_id=LOG_STREAM_ID)

    def send(self, route: Route, target: Target, body: dict[str, Any], *,
             idempotency_key: str | None = None) -> dict[str, Any]:
        _validate(route, body)
        body = copy.deepcopy(body)
        with self._lock:
            self.cap.requests.append({"route": route.value, "body": body})
            if route is Route.SESSIONS:
                if idempotency_key is not None and idempotency_key in self._by_key:
                    return {"id": self._by_key[idempotency_key]}
                session_id = _ids.new_id()
                if idempotency_key is not None:
                    self._by_key[idempotency_key] = session_id
                self.cap.sessions.append({"id": session_id, **body})
                return {"id": session_id, "name": body.get("name"), "project_id": target.project_id,
                        "project_name": "default", "external_id": body.get("external_id"),
                        "previous_session_id": body.get("previous_session_id")}
            if route is Route.SESSIONS_SEARCH:
                return self._search(body)
            if route is Route.TRACES:
                for trace in body["traces"]:
                    self.cap.traces.append({**trace, "_session_id": body.get("session_id")})
                return {"project_id": target.project_id, "project_name": "default",
                        "records_count": len(body["traces"]), "traces_count": len(body["traces"]),
                        "spans_count": 0, "session_id": body.get("session_id")}
            self.cap.spans.append(body)
            return {"project_id": target.project_id, "project_name": "default",
                    "records_count": len(body["spans"]), "trace_id": body["trace_id"],
                    "parent_id": body["parent_id"]}

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = {f.get("value") for f in body.get("filters", ())
                  if f.get("column_id") == "external_id"}
        records = [{"type": "session", **s} for s in reversed(self.cap.sessions)
                   if s.get("external_id") in wanted]
        return {"records": records[: int(body.get("limit", 100))], "starting_token": 0,
                "limit": body.get("limit", 100), "paginated": False,
                "next_starting_token": None}

    def close(self) -> None:
        return None


def _validate(route: Route, body: dict[str, Any]) -> None:
    """Refuse what the real API would refuse (same validator as the store and dev server)."""
    import json

    from ._store import validate

    # What the HTTP client would fail to encode (NaN, lone surrogates) never reaches a server.
    json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    checks = {Route.SESSIONS: validate.session_body, Route.SESSIONS_SEARCH: validate.search_body,
              Route.TRACES: validate.traces_body, Route.SPANS: validate.spans_body}
    checks[route](body)


@contextmanager
def capture(*, mode: str = "fire_and_forget", **options: Any) -> Iterator[Capture]:
    """Route records to memory for the duration of the block; see the module docstring.

    ``options`` are ``configure()`` options (e.g. ``capture_input=False``, ``redact=...``).
    """
    cap = Capture()
    settings = Settings.from_options({"mode": mode, **options}, environ={})
    pipeline = Pipeline(MemoryExporter(cap), reliable_timeout=settings.reliable_timeout,
                        flush_interval=settings.flush_interval,
                        max_batch_records=settings.max_batch_records,
                        max_batch_bytes=settings.max_batch_bytes,
                        max_queue_bytes=settings.max_queue_bytes, inline=True)
    runtime = _runtime.Runtime(settings, pipeline)
    _ids.set_id_factory(_ids.sequential_ids())
    _clock.set_clock(_clock.FixedClock())
    previous = _runtime.install(runtime)
    try:
        yield cap
    finally:
        _runtime.install(previous) if previous is not None else _uninstall()
        _ids.set_id_factory(None)
        _clock.set_clock(None)


def _uninstall() -> None:
    _runtime.current = None
