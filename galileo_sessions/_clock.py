"""Clocks: wall time for ``created_at``, a monotonic counter for durations.

Both are module attributes so the test kit can install a fixed clock that advances by a set
step on each reading; then the same program always yields the same record bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["FixedClock", "iso_from_ns", "monotonic_ns", "set_clock", "wall_ns"]

wall_ns: Callable[[], int] = time.time_ns
monotonic_ns: Callable[[], int] = time.perf_counter_ns


_cache: tuple[int, str] = (-1, "")  # (second, its formatted prefix): one tuple, thread-safe


def iso_from_ns(ns: int) -> str:
    """UTC ISO-8601 with microseconds and ``Z``, the form Galileo's clients send.

    Formatting a datetime costs microseconds; records made in the same second share the
    formatted prefix, so the usual cost is one divmod and an f-string.
    """
    global _cache
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_second, prefix = _cache
    if seconds != cached_second:
        prefix = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _cache = (seconds, prefix)
    return f"{prefix}.{rest // 1000:06d}Z"


class FixedClock:
    """A deterministic clock: starts at ``start_ns`` and advances ``step_ns`` per reading."""

    def __init__(self, start_ns: int = 1_767_225_600_000_000_000, step_ns: int = 1_000_000) -> None:
        self._now = start_ns
        self._step = step_ns

    def __call__(self) -> int:
        now = self._now
        self._now += self._step
        return now


def set_clock(clock: Callable[[], int] | None) -> None:
    """Use ``clock`` for both wall and monotonic readings (``None`` restores the real ones)."""
    global wall_ns, monotonic_ns
    if clock is None:
        wall_ns, monotonic_ns = time.time_ns, time.perf_counter_ns
    else:
        wall_ns = monotonic_ns = clock
