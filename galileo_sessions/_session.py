"""``session()``: open a Galileo session, link it to the previous one of its chain.

One object works as ``with``, ``async with`` and as a decorator (each call a new session).
The session is created through the pipeline: in fire-and-forget mode entry only enqueues it
(the handle's ``id`` arrives in the background); in reliable mode entry waits for the server.

Chain key: ``chain`` (string or callable of the arguments), else ``external_id``, else
``name``, else the decorated function's qualified name. ``chain=False`` never links; an
explicit ``previous_session_id`` wins over the chain.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from . import _runtime
from ._context import current_session_var
from ._internal import internal_error, logger
from ._pipeline.ops import SessionOp
from ._records import SessionHandle
from ._runtime import Runtime
from ._serialize import metadata_text
from ._wrappers import _to_thread

__all__ = ["SessionScope", "current_session", "session"]

P = ParamSpec("P")
R = TypeVar("R")
Value = Any  # a value, or a callable of the decorated function's arguments


def current_session() -> SessionHandle | None:
    """The active session handle, or ``None``."""
    return current_session_var.get()


def _resolve(value: Value, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return value(*args, **kwargs) if callable(value) else value


def _metadata(value: Any, max_bytes: int) -> dict[str, str]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"session metadata must be a mapping, got {type(value).__name__}")
    return {metadata_text(k, max_bytes): metadata_text(v, max_bytes)
            for k, v in value.items() if v is not None}


class SessionScope:
    """Returned by ``session(...)``: a context manager and a decorator."""

    def __init__(self, name: Value = None, *, external_id: Value = None, metadata: Value = None,
                 previous_session_id: str | None = None, chain: Value = None,
                 resume: bool = False, reliable: bool | None = None) -> None:
        self._name = name
        self._external_id = external_id
        self._metadata = metadata
        self._previous_session_id = previous_session_id
        self._chain = chain
        self._resume = resume
        self._reliable = reliable
        self._entered: list[tuple[SessionHandle, Any]] = []
        self._active = 0
        self._active_lock = threading.Lock()
        self._warned = False

    # -- opening -------------------------------------------------------------------------
    def _open(self, rt: Runtime, args: tuple[Any, ...], kwargs: dict[str, Any],
              default_chain: str | None) -> tuple[SessionHandle, SessionOp | None]:
        name = _resolve(self._name, args, kwargs)
        external_id = _resolve(self._external_id, args, kwargs)
        name = None if name is None else str(name)
        external_id = None if external_id is None else str(external_id)
        metadata = _metadata(_resolve(self._metadata, args, kwargs), rt.max_bytes)
        if self._chain is False:
            key = None
        else:
            chain = _resolve(self._chain, args, kwargs)
            key_value = chain if chain is not None else (external_id or name or default_chain)
            key = None if key_value is None else str(key_value)
        reliable = rt.reliable if self._reliable is None else bool(self._reliable)
        store = rt.chain_store
        previous = store.get(key) if key is not None else None
        if (self._resume and external_id and previous is not None
                and previous.external_id == external_id and previous.error is None):
            return previous, None  # continue the session this process already knows
        handle = SessionHandle(
            name=name, external_id=external_id, metadata=metadata, previous=None,
            previous_session_id=self._previous_session_id, reliable=reliable,
            resume=self._resume and bool(external_id), chain_key=key,
            wait_timeout=rt.wait_timeout if not reliable else rt.settings.reliable_timeout)
        if key is not None:
            swap = getattr(store, "swap", None)
            if swap is not None:  # atomic: concurrent sessions form a chain, not a fork
                previous = swap(key, handle)
            else:
                store.set(key, handle)
            if self._previous_session_id is None:
                handle.previous = previous
        body: dict[str, Any] = {"name": name, "external_id": external_id,
                                "user_metadata": metadata or None}
        if rt.redact is not None:
            body = _redacted_session(rt, body)
        return handle, SessionOp(handle, body)

    def _enter(self, rt: Runtime, args: tuple[Any, ...], kwargs: dict[str, Any],
               default_chain: str | None) -> tuple[SessionHandle, SessionOp | None, Any]:
        handle, op = self._open(rt, args, kwargs, default_chain)
        token = current_session_var.set(handle)
        return handle, op, token

    def _submit(self, rt: Runtime, op: SessionOp | None) -> None:
        if op is not None and rt.pipeline is not None:
            rt.pipeline.submit(op, reliable=op.handle.reliable)

    def _track(self, delta: int, *, decorated: bool) -> None:
        with self._active_lock:
            self._active += delta
            crowded = self._active > 1 and not self._warned
            if crowded and decorated and self._chain is None and self._external_id is None:
                self._warned = True  # once per decorator (an id() key could be reused)
            else:
                crowded = False
        if crowded:
            logger.warning(
                "galileo_sessions: session(%r) runs concurrently with neither chain= nor "
                "external_id=, so different users' sessions are linked into one chain; "
                "pass external_id=lambda ...: user_id (or chain=...) to keep them apart",
                self._name if not callable(self._name) else "<callable>")

    # -- with / async with ---------------------------------------------------------------
    def __enter__(self) -> SessionHandle:
        rt = _runtime.current or _runtime.get()
        handle, op, token = self._enter(rt, (), {}, None)
        self._entered.append((handle, token))
        try:
            self._submit(rt, op)
        except BaseException:
            self._leave()
            raise
        return handle

    def _leave(self) -> None:
        current = current_session_var.get()
        for index in range(len(self._entered) - 1, -1, -1):
            handle, token = self._entered[index]
            if handle is current:
                del self._entered[index]
                try:
                    current_session_var.reset(token)
                except ValueError:
                    current_session_var.set(None)
                return

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._leave()

    async def __aenter__(self) -> SessionHandle:
        rt = _runtime.current or _runtime.get()
        handle, op, token = self._enter(rt, (), {}, None)
        self._entered.append((handle, token))
        try:
            if op is not None and op.handle.reliable:
                await _to_thread(self._submit, rt, op)
            else:
                self._submit(rt, op)
        except BaseException:
            self._leave()
            raise
        return handle

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._leave()

    # -- decorator -----------------------------------------------------------------------
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        default_chain = getattr(fn, "__qualname__", None)
        # Callables receive the raw arguments, exactly as the decorated function does.
        needs_args = any(callable(v) for v in
                         (self._name, self._external_id, self._metadata, self._chain))
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError("session() decorates functions and coroutines; wrap a generator's "
                            "use in `with gs.session(...)` instead")
        scope = self

        def enter(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[
                Runtime, SessionHandle, SessionOp | None, Any] | None:
            rt = _runtime.current or _runtime.get()
            if not rt.enabled:
                return None
            try:
                if not needs_args:
                    args, kwargs = (), {}
                handle, op, token = scope._enter(rt, args, kwargs, default_chain)
            except Exception as exc:
                internal_error("session start", exc)
                return None
            scope._track(1, decorated=True)
            return rt, handle, op, token

        def leave(token: Any) -> None:
            scope._track(-1, decorated=True)
            try:
                current_session_var.reset(token)
            except ValueError:
                current_session_var.set(None)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                opened = enter(args, kwargs)
                if opened is None:
                    return await fn(*args, **kwargs)
                rt, _, op, token = opened
                try:
                    if op is not None and op.handle.reliable:
                        await _to_thread(scope._submit, rt, op)
                    else:
                        scope._submit(rt, op)
                    return await fn(*args, **kwargs)
                finally:
                    leave(token)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            opened = enter(args, kwargs)
            if opened is None:
                return fn(*args, **kwargs)
            rt, _, op, token = opened
            try:
                scope._submit(rt, op)
                return fn(*args, **kwargs)
            finally:
                leave(token)

        return wrapper


def _redacted_session(rt: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    from ._wire import redact_failed

    redact = rt.redact
    assert redact is not None
    try:
        result = redact(dict(body, type="session"))
    except Exception as exc:
        redact_failed(exc)
    else:
        if isinstance(result, dict):
            result.pop("type", None)
            return result
        redact_failed(None, result)
    # Never ship what the hook was meant to mask: the session is created without its fields.
    return {"name": None, "external_id": None, "user_metadata": None}


def session(name: Value = None, *, external_id: Value = None, metadata: Value = None,
            previous_session_id: str | None = None, chain: Value = None, resume: bool = False,
            reliable: bool | None = None) -> SessionScope:
    """Open a Galileo session (``with``, ``async with``, or as a decorator).

    ``name``, ``external_id``, ``metadata`` and ``chain`` may be callables that receive the
    decorated function's arguments. See the module docstring for the chaining rules.
    """
    return SessionScope(name, external_id=external_id, metadata=metadata,
                        previous_session_id=previous_session_id, chain=chain, resume=resume,
                        reliable=reliable)
