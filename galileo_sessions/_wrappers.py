"""The four wrapper kinds: plain function, coroutine, generator, async generator.

The kind is chosen once, when the function is decorated. Each wrapper keeps the wrapped
function's behaviour exactly: same return value, the same exception object re-raised with
``raise``, and for generators the full protocol (``send``, ``throw``, ``close``) forwarded by
hand, because the span must be the current span only while the generator's own code runs,
not while the caller holds the generator between items.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any

from . import _clock, _runtime
from ._binding import ArgumentBinder
from ._context import current_span_var
from ._internal import internal_error
from ._pipeline.ops import Op
from ._records import SpanNode
from ._runtime import Runtime
from ._serialize import to_text
from ._spans import close_span, open_span, submit_reliable
from ._wire import llm_input, normalize_input

__all__ = ["SpanSpec", "begin", "end", "make_wrapper"]


class SpanSpec:
    """What a decorator was told: the span's type, name and static fields."""

    __slots__ = ("capture_input", "capture_output", "metadata", "model", "name", "tags",
                 "temperature", "type")

    def __init__(self, type_: str, name: str, *, model: str | None = None,
                 temperature: float | None = None, tags: list[str] | None = None,
                 metadata: dict[str, str] | None = None, capture_input: bool = True,
                 capture_output: bool = True) -> None:
        self.type = type_
        self.name = name
        self.model = model
        self.temperature = temperature
        self.tags = tags
        self.metadata = metadata
        self.capture_input = capture_input
        self.capture_output = capture_output


def begin(rt: Runtime, spec: SpanSpec, arguments: Mapping[str, Any] | None,
          explicit_input: Any = None) -> SpanNode:
    """Open the span for one call (or one ``with`` block)."""
    if explicit_input is not None:
        input_value = llm_input(explicit_input, rt.max_bytes) if spec.type == "llm" \
            else to_text(explicit_input, rt.max_bytes)
    elif arguments is not None and rt.capture_input and spec.capture_input:
        input_value = normalize_input(spec.type, dict(arguments), rt.max_bytes)
    else:
        input_value = [] if spec.type == "llm" else ""
    node = open_span(rt, spec.type, spec.name, current_span_var.get(), input_value)
    if spec.tags:
        node.tags = list(spec.tags)
    if spec.metadata:
        node.metadata = dict(spec.metadata)
    if node.type == "llm":
        model = spec.model
        temperature = spec.temperature
        if arguments:
            if model is None and isinstance(arguments.get("model"), str):
                model = arguments["model"]
            if temperature is None and isinstance(arguments.get("temperature"), (int, float)):
                temperature = float(arguments["temperature"])
        if model is not None:
            node.set_attr("model", model)
        if temperature is not None:
            node.set_attr("temperature", temperature)
    return node


def _async_cancel(exc: BaseException) -> bool:
    """``asyncio.CancelledError`` without importing asyncio (if it is not loaded, it can't be)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


async def _to_thread(fn: Callable[..., Any], /, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def end(rt: Runtime, node: SpanNode, *, output: Any = None, exc: BaseException | None = None,
        has_output: bool = True) -> list[Op]:
    """Close the span; internal failures are reported, never raised into user code."""
    cancelled = exc is not None and (isinstance(exc, GeneratorExit) or _async_cancel(exc))
    try:
        return close_span(rt, node, output=output, exc=None if cancelled else exc,
                          cancelled=cancelled, has_output=has_output and not cancelled)
    except Exception as error:
        internal_error("span end", error)
        return []


def _send_after_error(rt: Runtime, ops: list[Op]) -> None:
    """Reliable ops of a failed call: the user's exception wins; delivery errors are logged."""
    try:
        submit_reliable(rt, ops)
    except Exception as exc:
        from ._internal import logger

        logger.error("galileo_sessions: reliable delivery failed for a failed call: %s", exc)


def _start(spec: SpanSpec, binder: ArgumentBinder, args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> tuple[Runtime, SpanNode] | None:
    rt = _runtime.current or _runtime.get()
    if not rt.enabled:
        return None
    try:
        needs_args = (rt.capture_input and spec.capture_input) or spec.type == "llm"
        return rt, begin(rt, spec, binder(args, kwargs) if needs_args else None)
    except Exception as exc:
        internal_error("span start", exc)
        return None


def make_wrapper(fn: Callable[..., Any], spec: SpanSpec) -> Callable[..., Any]:
    """Pick the wrapper kind for ``fn`` once, at decoration time."""
    import inspect

    binder = ArgumentBinder(fn)
    if inspect.isasyncgenfunction(fn):
        return _async_generator_wrapper(fn, spec, binder)
    if inspect.iscoroutinefunction(fn):
        return _coroutine_wrapper(fn, spec, binder)
    if inspect.isgeneratorfunction(fn):
        return _generator_wrapper(fn, spec, binder)
    return _function_wrapper(fn, spec, binder)


def _function_wrapper(fn: Callable[..., Any], spec: SpanSpec,
                      binder: ArgumentBinder) -> Callable[..., Any]:
    capture, is_llm, has_output = spec.capture_input, spec.type == "llm", spec.capture_output

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # ``_start`` inlined: this is the hottest path of the library.
        rt = _runtime.current or _runtime.get()
        if not rt.enabled:
            return fn(*args, **kwargs)
        try:
            node = begin(rt, spec, binder(args, kwargs)
                         if (capture and rt.capture_input) or is_llm else None)
        except Exception as exc:
            internal_error("span start", exc)
            return fn(*args, **kwargs)
        token = current_span_var.set(node)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            current_span_var.reset(token)
            ops = end(rt, node, exc=exc)
            if ops:
                _send_after_error(rt, ops)
            raise
        current_span_var.reset(token)
        try:  # ``end`` inlined for the success path
            ops = close_span(rt, node, output=result, has_output=has_output)
        except Exception as error:
            internal_error("span end", error)
            return result
        if ops:
            submit_reliable(rt, ops)
        return result

    return wrapper


def _coroutine_wrapper(fn: Callable[..., Any], spec: SpanSpec,
                       binder: ArgumentBinder) -> Callable[..., Any]:
    capture, is_llm, has_output = spec.capture_input, spec.type == "llm", spec.capture_output

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rt = _runtime.current or _runtime.get()  # ``_start`` inlined, as in the sync wrapper
        if not rt.enabled:
            return await fn(*args, **kwargs)
        try:
            node = begin(rt, spec, binder(args, kwargs)
                         if (capture and rt.capture_input) or is_llm else None)
        except Exception as exc:
            internal_error("span start", exc)
            return await fn(*args, **kwargs)
        token = current_span_var.set(node)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            current_span_var.reset(token)
            ops = end(rt, node, exc=exc)
            if ops:
                await _to_thread(_send_after_error, rt, ops)
            raise
        current_span_var.reset(token)
        try:  # ``end`` inlined for the success path
            ops = close_span(rt, node, output=result, has_output=has_output)
        except Exception as error:
            internal_error("span end", error)
            return result
        if ops:
            await _to_thread(submit_reliable, rt, ops)
        return result

    return wrapper


class _Collector:
    """Accumulates yielded items for the span's output, bounded by ``max_bytes``."""

    __slots__ = ("all_text", "items", "max_bytes", "node", "size", "truncated")

    def __init__(self, node: SpanNode, max_bytes: int) -> None:
        self.node = node
        self.items: list[Any] = []
        self.size = 0
        self.max_bytes = max_bytes
        self.truncated = False
        self.all_text = True

    def add(self, item: Any) -> None:
        if not self.items and not self.truncated and self.node.type == "llm":
            self.node.set_metric("time_to_first_token_ns",
                                 _clock.monotonic_ns() - self.node.start_ns)
        if self.truncated:
            return
        text = _chunk_text(item)
        if text is None:
            self.all_text = False
            self.size += 64
        else:
            item = text
            self.size += len(text)
        if self.size > self.max_bytes:
            self.truncated = True
        self.items.append(item)

    def output(self) -> Any:
        if self.all_text:
            return "".join(self.items)
        return self.items


def _chunk_text(item: Any) -> str | None:
    """Text of a streamed item: a str, or an OpenAI-style chunk's delta content."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        choices = item.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            delta = choices[0].get("delta") or {}
            content = delta.get("content") if isinstance(delta, Mapping) else None
            if isinstance(content, str):
                return content
    return None


def _generator_wrapper(fn: Callable[..., Any], spec: SpanSpec,
                       binder: ArgumentBinder) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = fn(*args, **kwargs)
        started = _start(spec, binder, args, kwargs)
        if started is None:
            return (yield from gen)
        rt, node = started
        collector = _Collector(node, rt.max_bytes)
        value: Any = None
        to_throw: BaseException | None = None
        while True:
            token = current_span_var.set(node)
            try:
                if to_throw is not None:
                    thrown, to_throw = to_throw, None
                    item = gen.throw(thrown)
                else:
                    item = gen.send(value)
            except StopIteration as stop:
                current_span_var.reset(token)
                submit_reliable(rt, end(rt, node, output=collector.output(),
                                            has_output=spec.capture_output))
                return stop.value
            except BaseException as exc:
                current_span_var.reset(token)
                _send_after_error(rt, end(rt, node, exc=exc))
                raise
            current_span_var.reset(token)
            collector.add(item)
            try:
                value = yield item
            except GeneratorExit as exit_:
                token = current_span_var.set(node)
                try:
                    gen.close()
                except BaseException as exc:
                    current_span_var.reset(token)
                    _send_after_error(rt, end(rt, node, exc=exc))
                    raise
                current_span_var.reset(token)
                _send_after_error(rt, end(rt, node, exc=exit_))
                raise
            except BaseException as exc:
                to_throw, value = exc, None

    return wrapper


def _async_generator_wrapper(fn: Callable[..., Any], spec: SpanSpec,
                             binder: ArgumentBinder) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = fn(*args, **kwargs)
        started = _start(spec, binder, args, kwargs)
        rt, node = started if started is not None else (None, None)
        collector = _Collector(node, rt.max_bytes) if node is not None and rt is not None \
            else None
        value: Any = None
        to_throw: BaseException | None = None
        while True:
            token = current_span_var.set(node) if node is not None else None
            try:
                if to_throw is not None:
                    thrown, to_throw = to_throw, None
                    item = await agen.athrow(thrown)
                else:
                    item = await agen.asend(value)
            except StopAsyncIteration:
                if token is not None and rt is not None and node is not None:
                    current_span_var.reset(token)
                    ops = end(rt, node, output=collector.output() if collector else None,
                              has_output=spec.capture_output)
                    if ops:
                        await _to_thread(submit_reliable, rt, ops)
                return
            except BaseException as exc:
                if token is not None and rt is not None and node is not None:
                    current_span_var.reset(token)
                    ops = end(rt, node, exc=exc)
                    if ops:
                        await _to_thread(_send_after_error, rt, ops)
                raise
            if token is not None:
                current_span_var.reset(token)
            if collector is not None:
                collector.add(item)
            try:
                value = yield item
            except GeneratorExit as exit_:
                token = current_span_var.set(node) if node is not None else None
                try:
                    await agen.aclose()
                except BaseException as exc:
                    if token is not None and rt is not None and node is not None:
                        current_span_var.reset(token)
                        _send_after_error(rt, end(rt, node, exc=exc))
                    raise
                if token is not None and rt is not None and node is not None:
                    current_span_var.reset(token)
                    _send_after_error(rt, end(rt, node, exc=exit_))
                raise
            except BaseException as exc:
                to_throw, value = exc, None

    return wrapper
