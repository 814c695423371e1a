"""Carrying the current session and span into threads.

A new thread starts with an empty ``contextvars`` context, so spans made there would start
traces of their own. ``wrap(fn)`` captures the caller's context now and runs ``fn`` inside a
copy of it later; ``ContextExecutor`` does that for every task it is given. Spans created in
those threads nest under the span that submitted the work.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextExecutor", "wrap"]

P = ParamSpec("P")
R = TypeVar("R")


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind the current context (session, span) to ``fn`` for a call in another thread.

    Each call runs in a fresh copy of the captured context, so the wrapped callable may be
    called several times, even at once.
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return bound


class ContextExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the submitter's context."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)
