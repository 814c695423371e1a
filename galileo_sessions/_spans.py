"""Opening and closing spans: the part of the hot path shared by every decorator kind.

``open_span`` makes the node (and an implicit trace around it when no trace is open);
``close_span`` stamps duration, status and output, then hands finished work to the pipeline:
the whole tree when a trace ends, or the span alone when its trace has already gone out.
Fire-and-forget ops are enqueued under the trace's lock so a trace always enters the queue
before any of its late spans; reliable ops are returned for the caller to send, outside it.
"""

from __future__ import annotations

from typing import Any

from . import _clock
from ._context import current_session_var
from ._pipeline.ops import Op, SpansOp, TraceOp
from ._records import SpanNode
from ._runtime import Runtime
from ._serialize import to_text
from ._wire import build_tree_sized, normalize_output

__all__ = ["close_span", "error_status", "open_span", "submit_reliable"]

_ERROR_MESSAGE_BYTES = 2000
_SHAPED = frozenset({"llm", "retriever"})  # outputs with a structured wire shape


def open_span(rt: Runtime, type_: str, name: str, parent: SpanNode | None,
              input_value: Any) -> SpanNode:
    """A started node of ``type_`` under ``parent`` (or under a new implicit trace)."""
    created = _clock.wall_ns()
    start = _clock.monotonic_ns()
    if type_ == "trace":
        if parent is not None:
            type_ = "workflow"  # a trace inside a trace is recorded as a workflow span
        else:
            node = SpanNode("trace", name, None, created, start)
            _attach_session(rt, node)
            node.input = input_value
            if rt.otel_hook is not None:
                rt.otel_hook.start(node)
            return node
    if parent is None:
        parent = SpanNode("trace", name, None, created, start)
        parent.implicit = True
        _attach_session(rt, parent)
        parent.input = _input_text(input_value)
    node = SpanNode(type_, name, parent, created, start)
    node.input = input_value
    if rt.otel_hook is not None:
        rt.otel_hook.start(node)
    return node


def _attach_session(rt: Runtime, root: SpanNode) -> None:
    session = current_session_var.get()
    root.session = session
    root.reliable = session.reliable if session is not None else rt.reliable


def error_status(node: SpanNode, exc: BaseException) -> None:
    """Mark ``node`` failed: status code, error type and message in its metadata."""
    status = getattr(exc, "status_code", None)
    node.status_code = status if isinstance(status, int) and not isinstance(status, bool) else 500
    node.set_metadata("error.type", type(exc).__qualname__)
    try:
        message = str(exc)
    except Exception:
        message = f"<{type(exc).__qualname__}: str() failed>"
    node.set_metadata("error.message", to_text(message, _ERROR_MESSAGE_BYTES))


def close_span(rt: Runtime, node: SpanNode, *, output: Any = None, exc: BaseException | None = None,
               cancelled: bool = False, has_output: bool = True) -> list[Op]:
    """End ``node``; return the reliable ops the caller must send (usually none)."""
    node.duration_ns = _clock.monotonic_ns() - node.start_ns
    if exc is not None:
        error_status(node, exc)
    elif cancelled:
        node.set_metadata("cancelled", "true")
    elif node.status_code is None:
        node.status_code = 200
    if not node.output_set:
        if has_output and rt.capture_output and exc is None:
            node.output = to_text(output, rt.max_bytes) if node.type not in _SHAPED \
                else normalize_output(node, output, rt.max_bytes)
        elif node.type == "llm":
            node.output = {"role": "assistant", "content": ""}
    if node.otel is not None and rt.otel_hook is not None:
        rt.otel_hook.end(node, exc)
    pending: list[Op] = []
    _finish(rt, node, pending)
    root = node.root
    if root.implicit and node.parent is root and not root.ended:
        root.duration_ns = node.duration_ns
        root.status_code = node.status_code
        if node.metadata and exc is not None:
            root.metadata = dict(node.metadata)
        if cancelled:
            root.set_metadata("cancelled", "true")
        root.output = _as_text(node.output)
        _finish(rt, root, pending)
    return pending


def _input_text(value: Any) -> str:
    """A trace's text input from its only span's input (llm spans take messages)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        content = value[-1].get("content", "")
        return content if isinstance(content, str) else str(content)
    return ""


def _as_text(output: Any) -> Any:
    if isinstance(output, dict) and "content" in output:  # an llm message
        content = output["content"]
        return content if isinstance(content, str) else str(content)
    if output is None or isinstance(output, str):
        return output
    return str(output)


def _finish(rt: Runtime, node: SpanNode, pending: list[Op]) -> None:
    root = node.root
    lock = root.lock
    assert lock is not None
    reliable = root.reliable
    with lock:
        node.ended = True
        if node is root:
            tree, size = build_tree_sized(root, rt.redact)
            op: Op = TraceOp(root.session, tree, size)
        else:
            parent = node.parent
            assert parent is not None
            if not parent.delivered:
                return  # rides along with its parent
            span, size = build_tree_sized(node, rt.redact)
            op = SpansOp(root.session, root.id, parent.id, [span], size)
        if not reliable:
            pipeline = rt.pipeline
            if pipeline is not None:
                pipeline.enqueue(op)
            return
    pending.append(op)


def submit_reliable(rt: Runtime, ops: list[Op]) -> None:
    """Send reliable ops on this thread (may raise ``DeliveryError``)."""
    pipeline = rt.pipeline
    if pipeline is not None:
        for op in ops:
            pipeline.submit(op, reliable=True)
