"""Internal errors never reach user code; they are logged, rate-limited.

Under our own test suite (``GALILEO_SESSIONS_STRICT=1``, set by ``tests/conftest.py``) they are
re-raised instead, so a bug in the library cannot hide behind the safety net. The logger is
``galileo_sessions``; messages are built lazily by ``logging`` so a disabled level costs nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time

__all__ = ["internal_error", "log_once", "logger", "strict"]

logger = logging.getLogger("galileo_sessions")

strict = os.environ.get("GALILEO_SESSIONS_STRICT", "") in {"1", "true", "yes"}
"""Re-raise internal errors (our test suite sets this)."""

_RATE_WINDOW_S = 60.0
_last_logged: dict[str, float] = {}
_once_keys: set[str] = set()
_lock = threading.Lock()


def internal_error(where: str, exc: BaseException) -> None:
    """Report an internal failure in ``where``: at most once a minute per place.

    Call it from an ``except`` block; in strict mode the exception is re-raised.
    """
    if strict:
        raise exc
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(where)
        if last is not None and now - last < _RATE_WINDOW_S:
            return
        _last_logged[where] = now
    logger.warning("galileo_sessions internal error in %s (tracing continues): %r",
                   where, exc, exc_info=exc)


def log_once(key: str, level: int, msg: str, *args: object) -> None:
    """Log ``msg`` the first time ``key`` is seen in this process."""
    with _lock:
        if key in _once_keys:
            return
        _once_keys.add(key)
    logger.log(level, msg, *args)
