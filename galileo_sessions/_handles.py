"""``current_span()``: a handle on the running span that user code can enrich.

Outside any span the handle is a no-op, never an error, so library code can call
``gs.current_span().update(...)`` unconditionally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import _runtime
from ._context import current_span_var
from ._records import SpanNode
from ._serialize import metadata_text, to_text
from ._wire import llm_input, normalize_output

__all__ = ["SpanHandle", "current_span"]

_UNSET: Any = object()


class SpanHandle:
    """The running trace or span. ``update`` values win over what the decorator captured."""

    __slots__ = ("_node",)

    def __init__(self, node: SpanNode | None) -> None:
        self._node = node

    @property
    def id(self) -> str | None:
        return self._node.id if self._node is not None else None

    @property
    def trace_id(self) -> str | None:
        return self._node.root.id if self._node is not None else None

    @property
    def type(self) -> str | None:
        return self._node.type if self._node is not None else None

    @property
    def name(self) -> str | None:
        return self._node.name if self._node is not None else None

    def __bool__(self) -> bool:
        return self._node is not None

    def update(self, *, input: Any = _UNSET, output: Any = _UNSET, name: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None,
               status_code: int | None = None, model: str | None = None,
               temperature: float | None = None, input_tokens: int | None = None,
               output_tokens: int | None = None, total_tokens: int | None = None,
               time_to_first_token_ns: int | None = None) -> None:
        """Set fields of the running span; unknown to no-op handles."""
        node = self._node
        if node is None:
            return
        runtime = _runtime.current
        max_bytes = runtime.max_bytes if runtime is not None else 100_000
        if input is not _UNSET:
            if node.type == "llm":
                node.input = llm_input(input, max_bytes)
            else:
                node.input = to_text(input, max_bytes)
        if output is not _UNSET:
            node.output = normalize_output(node, output, max_bytes)
            node.output_set = True
        if name is not None:
            node.name = str(name)
        if metadata:
            for key, value in metadata.items():
                node.set_metadata(metadata_text(key, max_bytes), metadata_text(value, max_bytes))
        if tags:
            node.tags = [*(node.tags or ()), *(str(tag) for tag in tags)]
        if status_code is not None:
            node.status_code = int(status_code)
        if model is not None:
            node.set_attr("model", str(model))
        if temperature is not None:
            node.set_attr("temperature", float(temperature))
        for metric, value in (("num_input_tokens", input_tokens),
                              ("num_output_tokens", output_tokens),
                              ("num_total_tokens", total_tokens),
                              ("time_to_first_token_ns", time_to_first_token_ns)):
            if value is not None:
                node.set_metric(metric, int(value))
        if total_tokens is None and (input_tokens is not None or output_tokens is not None):
            metrics = node.metrics or {}
            node.set_metric("num_total_tokens", int(metrics.get("num_input_tokens", 0))
                            + int(metrics.get("num_output_tokens", 0)))

    def __repr__(self) -> str:
        if self._node is None:
            return "SpanHandle(<no active span>)"
        return f"SpanHandle(type={self._node.type!r}, name={self._node.name!r}, id={self._node.id})"


def current_span() -> SpanHandle:
    """The running span (or trace), or a no-op handle outside any."""
    return SpanHandle(current_span_var.get())
