"""``configure(otel=True)``: every galileo span is also an OpenTelemetry span.

Only ``opentelemetry-api`` is used here. Spans are started on the user's *global* tracer
provider (``trace.get_tracer("galileo_sessions")``); the library never installs or replaces a
provider. While no SDK provider is set, the API hands out a proxy whose spans record nothing:
the hook notices that with one module-attribute read per span and does nothing else, so
``otel=True`` costs nothing until the application sets up OpenTelemetry.

The OTel span is made current (``context.attach``) from ``open_span`` to ``close_span``, which
for functions and coroutines is exactly while the function body runs, so auto-instrumented
children (httpx, OpenAI, ...) nest under it. For generator spans it stays attached in the
consuming context from the first item until the generator ends; detaching is silent if the
generator is finished in another context.

Attributes follow the gen_ai semantic conventions (``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.usage.*``, ``gen_ai.input.messages`` /
``gen_ai.output.messages`` as JSON strings, ``gen_ai.tool.name``, ``gen_ai.agent.name``) plus
``galileo.session.id`` / ``gen_ai.conversation.id`` (the session's server id when known, else
its local id), ``galileo.session.previous_id``, ``galileo.span.type`` and ``galileo.trace.id``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from ._internal import internal_error

if TYPE_CHECKING:
    from ._records import SessionHandle, SpanNode

__all__ = ["OPERATION_NAMES", "TRACER_NAME", "OtelHook", "session_attributes"]

TRACER_NAME = "galileo_sessions"

#: ``gen_ai.operation.name`` per galileo span type.
OPERATION_NAMES: dict[str, str] = {
    "llm": "chat",
    "tool": "execute_tool",
    "agent": "invoke_agent",
    "retriever": "retrieval",
    "workflow": "invoke_workflow",
    "trace": "invoke_workflow",
}
_ERROR = otel_trace.Status(otel_trace.StatusCode.ERROR)


def session_id_of(session: SessionHandle) -> str:
    """The session's server id if already known (never waits), else its local id."""
    return session._id or session.local_id


def session_attributes(session: SessionHandle | None) -> dict[str, str]:
    """``galileo.session.id``, ``gen_ai.conversation.id`` and the previous session, if any."""
    if session is None:
        return {}
    sid = session_id_of(session)
    attrs = {"galileo.session.id": sid, "gen_ai.conversation.id": sid}
    previous = session.previous_session_id_explicit
    if previous is None and session.previous is not None:
        previous = session.previous._id
    if previous:
        attrs["galileo.session.previous_id"] = previous
    return attrs


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return json.dumps(str(value))


_encode_str: Any = json.encoder.encode_basestring  # the C encoder: ~0.1 µs, not 2.5 µs
_ONE_MESSAGE = {role: f'[{{"role":"{role}","content":' for role in ("user", "assistant")}


def _messages(value: Any, role: str) -> str | None:
    """A gen_ai ``*.messages`` JSON string for a node's input or output."""
    if isinstance(value, str):  # the common case (non-llm spans): no json.dumps
        return _ONE_MESSAGE[role] + _encode_str(value) + "}]" if value else None
    if value is None or value == []:
        return None
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
        return _dumps(value)
    if isinstance(value, dict) and "role" in value:
        return _dumps([value])
    if isinstance(value, list):  # retriever documents (galileo-wire.md §12.3)
        return _dumps([{"role": role, "content": {"documents": value}}])
    return _dumps([{"role": role, "content": value if isinstance(value, str) else str(value)}])


class OtelHook:
    """Starts, enriches and ends the OTel twin of each galileo span."""

    __slots__ = ("_env_provider", "_session_cache", "_trace_module", "_tracer")

    def __init__(self) -> None:
        self._tracer: otel_trace.Tracer | None = None
        # (session, its server id when cached, attributes): consecutive spans share a session
        self._session_cache: tuple[Any, str | None, dict[str, str]] = (None, None, {})
        self._trace_module: Any = otel_trace
        # OTEL_PYTHON_TRACER_PROVIDER makes the API load a provider lazily on first use.
        self._env_provider = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ

    @classmethod
    def create(cls) -> OtelHook:
        return cls()

    def tracer(self) -> otel_trace.Tracer | None:
        """The real tracer once an SDK provider is set globally, else ``None`` (cheap)."""
        tracer = self._tracer
        if tracer is not None:
            return tracer
        if self._trace_module._TRACER_PROVIDER is None and not self._env_provider:
            return None  # the API's proxy: no provider yet, nothing would be recorded
        provider = otel_trace.get_tracer_provider()
        if isinstance(provider, (otel_trace.ProxyTracerProvider,
                                 otel_trace.NoOpTracerProvider)):
            return None
        from . import __version__

        tracer = provider.get_tracer(TRACER_NAME, __version__)
        self._tracer = tracer
        return tracer

    # -- called from _spans.open_span / close_span ---------------------------------------
    def start(self, node: SpanNode) -> None:
        tracer = self.tracer()
        if tracer is None:
            return
        try:
            type_ = node.type
            root = node.root
            attrs: dict[str, Any] = {
                "galileo.span.type": type_,
                "gen_ai.operation.name": OPERATION_NAMES.get(type_, "invoke_workflow"),
                "galileo.trace.id": root.id,
            }
            session = root.session
            if session is not None:
                cached = self._session_cache
                if cached[0] is not session or cached[1] is not session._id:
                    cached = (session, session._id, session_attributes(session))
                    self._session_cache = cached
                attrs.update(cached[2])
            if type_ == "tool":
                attrs["gen_ai.tool.name"] = node.name
            elif type_ == "agent":
                attrs["gen_ai.agent.name"] = node.name
            messages = _messages(node.input, "user")
            if messages is not None:
                attrs["gen_ai.input.messages"] = messages
            span = tracer.start_span(node.name, attributes=attrs)
            token = otel_context.attach(otel_trace.set_span_in_context(span))
            node.otel = (span, token)
        except Exception as exc:
            internal_error("otel span start", exc)

    def end(self, node: SpanNode, exc: BaseException | None) -> None:
        state = node.otel
        if state is None:
            return
        node.otel = None
        span, token = state
        try:
            if span.is_recording():
                attrs: dict[str, Any] = {}
                if node.attrs:
                    model = node.attrs.get("model")
                    if isinstance(model, str):
                        attrs["gen_ai.request.model"] = model
                    temperature = node.attrs.get("temperature")
                    if isinstance(temperature, (int, float)):
                        attrs["gen_ai.request.temperature"] = temperature
                    finish = node.attrs.get("finish_reason")
                    if isinstance(finish, str):
                        attrs["gen_ai.response.finish_reasons"] = (finish,)
                metrics = node.metrics
                if metrics:
                    for metric, key in (("num_input_tokens", "gen_ai.usage.input_tokens"),
                                        ("num_output_tokens", "gen_ai.usage.output_tokens")):
                        value = metrics.get(metric)
                        if isinstance(value, int):
                            attrs[key] = value
                messages = _messages(node.output, "assistant")
                if messages is not None:
                    attrs["gen_ai.output.messages"] = messages
                if node.status_code is not None and node.status_code >= 400:
                    attrs["galileo.status_code"] = node.status_code
                    if exc is not None:
                        span.record_exception(exc)
                    span.set_status(_ERROR)
                elif node.metadata and "cancelled" in node.metadata:
                    attrs["galileo.cancelled"] = True
                if attrs:
                    span.set_attributes(attrs)
            span.end()
        except Exception as error:
            internal_error("otel span end", error)
        _detach(token)


def _detach(token: Any) -> None:
    """Detach silently: a generator finished in another context has nothing to restore."""
    var = getattr(token, "var", None)
    if var is None:
        try:
            otel_context.detach(token)
        except Exception:
            return
        return
    try:
        var.reset(token)
    except (ValueError, RuntimeError):
        return
