"""Counters and the honest result of a flush.

A record is a session, a trace (with its nested spans) or a batch of late spans. Every
record that enters the pipeline ends in exactly one of ``sent``, ``failed`` or ``dropped``,
or is still ``pending``; ``FlushResult`` reports those, so a dead backend can never look like
success.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["FlushResult", "Stats"]


@dataclass(frozen=True)
class FlushResult:
    """What a flush achieved: records finished since the previous flush, and what is left.

    ``last_error`` is the last delivery error seen since the previous flush, if any.
    """

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    pending: int = 0
    last_error: str | None = None

    @property
    def ok(self) -> bool:
        """True when everything was delivered and nothing failed or was dropped."""
        return self.failed == 0 and self.dropped == 0 and self.pending == 0

    def __bool__(self) -> bool:
        return self.ok


class Stats:
    """Thread-safe counters since start. Increments take a short lock, never across I/O."""

    __slots__ = ("_lock", "_marks", "dropped", "enqueued", "failed", "last_error", "pending",
                 "queue_bytes", "retried", "sent", "spooled")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enqueued = self.sent = self.retried = self.failed = 0
        self.dropped = self.spooled = self.queue_bytes = self.pending = 0
        self.last_error: str | None = None
        self._marks = (0, 0, 0)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def submitted(self, size: int) -> None:
        """The hot path's one update (``add`` with keywords costs several times more)."""
        with self._lock:
            self.enqueued += 1
            self.pending += 1
            self.queue_bytes += size

    def error(self, message: str) -> None:
        with self._lock:
            self.last_error = message

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"enqueued": self.enqueued, "sent": self.sent, "retried": self.retried,
                    "failed": self.failed, "dropped": self.dropped, "spooled": self.spooled,
                    "queue_bytes": self.queue_bytes, "pending": self.pending}

    def flush_result(self) -> FlushResult:
        """Counts since the previous call, plus what is still pending now."""
        with self._lock:
            sent0, failed0, dropped0 = self._marks
            self._marks = (self.sent, self.failed, self.dropped)
            result = FlushResult(sent=self.sent - sent0, failed=self.failed - failed0,
                                 dropped=self.dropped - dropped0, pending=self.pending,
                                 last_error=self.last_error)
            self.last_error = None  # each result reports the errors of its own period
            return result
