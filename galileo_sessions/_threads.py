"""Carrying the current session and span into threads.

A new thread starts with an empty ``contextvars`` context, so spans made there would start
traces of their own. ``wrap(fn)`` captures the caller's context now and runs ``fn`` inside a
copy of it later; ``ContextExecutor`` does that for every task it is given. Spans created in
those threads nest under the span that submitted the work.

For code you do not control (a library's own ``ThreadPoolExecutor``), ``instrument_threads()``
patches ``ThreadPoolExecutor.submit`` (and so ``map``) to do the same, with ``wrapt`` so the
patch keeps the method's signature and can be undone by ``uninstrument_threads()``. It is
opt-in: the library never patches anything by itself.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextExecutor", "instrument_threads", "uninstrument_threads", "wrap"]

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


_patch_lock = threading.Lock()


def _submit_in_context(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
    if not args:
        return wrapped(*args, **kwargs)
    fn, *rest = args
    return wrapped(contextvars.copy_context().run, fn, *rest, **kwargs)


def instrument_threads() -> None:
    """Make every ``ThreadPoolExecutor`` carry the submitter's context (idempotent)."""
    import wrapt

    with _patch_lock:
        if getattr(ThreadPoolExecutor.submit, "_galileo_sessions_patch", False):
            return
        wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", _submit_in_context)
        ThreadPoolExecutor.submit._galileo_sessions_patch = True  # type: ignore[attr-defined]


def uninstrument_threads() -> None:
    """Undo ``instrument_threads()``."""
    with _patch_lock:
        patched: Any = ThreadPoolExecutor.__dict__.get("submit")
        if getattr(patched, "_galileo_sessions_patch", False):
            ThreadPoolExecutor.submit = patched.__wrapped__  # type: ignore[method-assign]
