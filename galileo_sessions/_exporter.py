"""The one interface between the pipeline and wherever records end up.

Three exporters implement it: the local SQLite store (the embedded default), the HTTP client
(Galileo or the dev server) and the in-memory capture of the test kit. Each ``Route`` is one
Galileo write endpoint; the body passed to ``send`` is exactly the JSON request body that
endpoint takes, envelope included, so every exporter sees the same bytes the API would.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Exporter", "Route", "Target"]


class Route(enum.Enum):
    """A Galileo write endpoint, relative to ``/v2/projects/{project_id}``."""

    SESSIONS = "sessions"
    SESSIONS_SEARCH = "sessions/search"
    TRACES = "traces"
    SPANS = "spans"


@dataclass(frozen=True)
class Target:
    """Where records go: a project and exactly one of a log stream or an experiment."""

    project_id: str
    log_stream_id: str | None = None
    experiment_id: str | None = None

    def envelope(self) -> dict[str, Any]:
        """The envelope fields every write request carries (galileo-wire.md section 3)."""
        if self.experiment_id is not None:
            return {"experiment_id": self.experiment_id}
        return {"log_stream_id": self.log_stream_id}


class Exporter(Protocol):
    """Sends request bodies to one backend. Called from one worker thread at a time.

    ``resolve_target`` may do I/O the first time (project and log stream lookup); it caches
    its answer. Both methods raise the ``ApiError`` family for transport trouble and
    ``ApiStatusError`` / ``IngestValidationError`` for refused bodies; the pipeline decides
    what is retried.
    """

    kind: str

    def resolve_target(self) -> Target: ...

    def send(self, route: Route, target: Target, body: dict[str, Any], *,
             idempotency_key: str | None = None) -> dict[str, Any]:
        """POST ``body`` to ``route``; return the decoded response body.

        ``idempotency_key`` is set on session creation, whose body has no client id: the
        same key sent twice must create one session (sent as the ``Idempotency-Key`` header
        over HTTP; the local store and dev server honour it).
        """
        ...

    def close(self) -> None: ...
