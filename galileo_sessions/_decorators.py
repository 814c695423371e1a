"""``trace``, ``span`` and ``log``: decorators that are also (async) context managers.

``@gs.span`` and ``@gs.span(type="llm", model=...)`` both work; so do
``with gs.span("step", type="tool") as s:`` and ``async with``. Decorating picks the wrapper
kind once (see ``_wrappers``); ``classmethod``/``staticmethod`` objects are unwrapped,
decorated and rewrapped, so the decorator may sit above or below them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, overload

from . import _runtime
from ._context import current_span_var
from ._handles import SpanHandle
from ._internal import internal_error
from ._records import SpanNode
from ._serialize import metadata_text
from ._spans import submit_reliable
from ._wrappers import SpanSpec, begin, end, make_wrapper

_DEFAULT_MAX_BYTES = 100_000  # decoration time: the runtime's bound is not known yet

__all__ = ["Instrument", "SpanType", "log", "span", "trace"]

P = ParamSpec("P")
R = TypeVar("R")
SpanType = Literal["llm", "retriever", "tool", "workflow", "agent"]
_SPAN_TYPES = ("llm", "retriever", "tool", "workflow", "agent")


def _decorate(fn: Any, type_: str, name: str | None, options: Mapping[str, Any]) -> Any:
    if isinstance(fn, classmethod):
        return classmethod(_decorate(fn.__func__, type_, name, options))
    if isinstance(fn, staticmethod):
        return staticmethod(_decorate(fn.__func__, type_, name, options))
    if not callable(fn):
        raise TypeError(f"galileo_sessions can only decorate callables, got {type(fn).__name__}")
    spec = SpanSpec(type_, name or str(getattr(fn, "__name__", type(fn).__name__)), **options)
    return make_wrapper(fn, spec)


class Instrument:
    """What ``trace(...)``, ``span(...)`` and ``log(...)`` return: a decorator and a CM."""

    __slots__ = ("_entered", "_input", "_name", "_options", "_type")

    def __init__(self, type_: str, name: str | None, input_: Any,
                 options: dict[str, Any]) -> None:
        self._type = type_
        self._name = name
        self._input = input_
        self._options = options
        self._entered: list[tuple[SpanNode, Any]] = []

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        wrapped: Callable[P, R] = _decorate(fn, self._type, self._name, self._options)
        return wrapped

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> SpanHandle:
        rt = _runtime.current or _runtime.get()
        if not rt.enabled:
            return SpanHandle(None)
        try:
            spec = SpanSpec(self._type, self._name or self._type, **self._options)
            node = begin(rt, spec, None, self._input)
        except Exception as exc:
            internal_error("span start", exc)
            return SpanHandle(None)
        self._entered.append((node, current_span_var.set(node)))
        return SpanHandle(node)

    def _pop(self) -> tuple[SpanNode, Any] | None:
        current = current_span_var.get()
        for index in range(len(self._entered) - 1, -1, -1):
            if self._entered[index][0] is current:
                return self._entered.pop(index)
        return None

    def _exit(self, exc: BaseException | None) -> list[Any]:
        entry = self._pop()
        if entry is None:
            return []
        node, token = entry
        try:
            current_span_var.reset(token)
        except ValueError:  # exited in another context: restore by hand
            current_span_var.set(node.parent)
        rt = _runtime.current or _runtime.get()
        return end(rt, node, exc=exc, has_output=False)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        ops = self._exit(exc)
        if ops:
            rt = _runtime.current or _runtime.get()
            if exc is None:
                submit_reliable(rt, ops)
            else:
                try:
                    submit_reliable(rt, ops)
                except Exception as error:
                    internal_error("reliable delivery after error", error)

    async def __aenter__(self) -> SpanHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        import asyncio

        ops = self._exit(exc)
        if ops:
            rt = _runtime.current or _runtime.get()
            await asyncio.to_thread(submit_reliable, rt, ops)


def _options(*, model: str | None = None, temperature: float | None = None,
             tags: Iterable[str] | None = None, metadata: Mapping[str, Any] | None = None,
             capture_input: bool = True, capture_output: bool = True) -> dict[str, Any]:
    return {
        "model": model,
        "temperature": temperature,
        "tags": [str(tag) for tag in tags] if tags else None,
        "metadata": {metadata_text(k, _DEFAULT_MAX_BYTES): metadata_text(v, _DEFAULT_MAX_BYTES)
                     for k, v in metadata.items()} if metadata else None,
        "capture_input": capture_input,
        "capture_output": capture_output,
    }


@overload
def trace(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def trace(name: str | None = None, /, *, input: Any = None, tags: Iterable[str] | None = None,
          metadata: Mapping[str, Any] | None = None, capture_input: bool = True,
          capture_output: bool = True) -> Instrument: ...
def trace(fn_or_name: Any = None, /, *, input: Any = None, tags: Iterable[str] | None = None,
          metadata: Mapping[str, Any] | None = None, capture_input: bool = True,
          capture_output: bool = True) -> Any:
    """A root trace: ``@gs.trace``, ``@gs.trace("name")`` or ``with gs.trace("name") as t:``.

    A trace ends when its outermost call returns. Inside another trace it is recorded as a
    workflow span (Galileo traces do not nest).
    """
    options = _options(tags=tags, metadata=metadata, capture_input=capture_input,
                       capture_output=capture_output)
    if callable(fn_or_name) or isinstance(fn_or_name, (classmethod, staticmethod)):
        return _decorate(fn_or_name, "trace", None, options)
    return Instrument("trace", fn_or_name, input, options)


@overload
def span(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def span(name: str | None = None, /, *, type: SpanType = "workflow", input: Any = None,
         model: str | None = None, temperature: float | None = None,
         tags: Iterable[str] | None = None, metadata: Mapping[str, Any] | None = None,
         capture_input: bool = True, capture_output: bool = True) -> Instrument: ...
def span(fn_or_name: Any = None, /, *, type: SpanType = "workflow", input: Any = None,
         model: str | None = None, temperature: float | None = None,
         tags: Iterable[str] | None = None, metadata: Mapping[str, Any] | None = None,
         capture_input: bool = True, capture_output: bool = True) -> Any:
    """A span of ``type`` (llm, retriever, tool, workflow, agent).

    Outside any trace, a trace named after the span is opened around it.
    """
    if type not in _SPAN_TYPES:
        from .exceptions import ConfigError

        raise ConfigError("type", f"span type must be one of {', '.join(_SPAN_TYPES)}, "
                                  f"got {type!r}")
    options = _options(model=model, temperature=temperature, tags=tags, metadata=metadata,
                       capture_input=capture_input, capture_output=capture_output)
    if callable(fn_or_name) or isinstance(fn_or_name, (classmethod, staticmethod)):
        return _decorate(fn_or_name, type, None, options)
    return Instrument(type, fn_or_name, input, options)


@overload
def log(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def log(*, name: str | None = None, span_type: SpanType | None = None,
        model: str | None = None, tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None) -> Instrument: ...
def log(fn: Any = None, /, *, name: str | None = None, span_type: SpanType | None = None,
        model: str | None = None, tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None) -> Any:
    """The Galileo SDK's spelling: ``@gs.log`` / ``@gs.log(span_type="tool")``."""
    if fn is not None:
        return span(fn)
    return span(name, type=span_type or "workflow", model=model, tags=tags, metadata=metadata)

