"""OpenTelemetry SDK side of the bridge (extra ``galileo-sessions[otel]``).

- ``SessionSpanProcessor``: turns spans from any instrumentation (gen_ai semantic conventions,
  OpenInference) into Galileo records inside the current galileo session and trace.
- ``galileo_otlp_exporter()``: an OTLP/HTTP exporter for Galileo's ``/otel/traces``.
- ``GalileoSessionStamper``: stamps the current session and project on spans as they start.

None of these touch the global tracer provider; add them to the provider you set up::

    provider = TracerProvider()
    provider.add_span_processor(SessionSpanProcessor())
    trace.set_tracer_provider(provider)          # your call, not ours

See ``docs/otel.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from . import _clock, _runtime
from ._context import current_session_var, current_span_var
from ._internal import internal_error, logger
from ._otel_hook import TRACER_NAME, session_attributes
from ._otel_mapping import apply, classify, map_span
from ._records import SessionHandle, SpanNode
from ._runtime import Runtime
from ._spans import _attach_session, _input_text, close_span, submit_reliable

__all__ = ["GalileoSessionStamper", "SessionSpanProcessor", "galileo_otlp_exporter"]

_ALL_TYPES = frozenset({"llm", "retriever", "tool", "workflow", "agent"})


class _Entry:
    __slots__ = ("node", "parent")

    def __init__(self, node: SpanNode | None, parent: SpanNode | None) -> None:
        self.node = node  # the record of a kept span
        self.parent = parent  # for a dropped span: where its children go instead


def _open(rt: Runtime, type_: str, name: str, parent: SpanNode | None, *, created_ns: int,
          session_id: str | None) -> SpanNode:
    """``open_span`` for a foreign span: same tree rules, no OTel twin, the span's own time."""
    start = _clock.monotonic_ns()
    if parent is None:
        parent = SpanNode("trace", name, None, created_ns, start)
        parent.implicit = True
        _attach_session(rt, parent)
        if parent.session is None and session_id:
            parent.session = SessionHandle.known(session_id)
    node = SpanNode(type_, name, parent, created_ns, start)
    node.input = [] if type_ == "llm" else ""
    return node


class SessionSpanProcessor(SpanProcessor):
    """Turns ended OTel spans into Galileo records of the current session and trace.

    A span becomes a child of the galileo span that was current when it *started* (or of the
    record of its OTel parent, when that parent was itself turned into a record); with
    neither, it becomes a trace of its own in the current session (or in the session named
    by its ``galileo.session.id`` attribute). Spans outside LLM concerns (plain HTTP, DB) are
    dropped unless ``include_non_llm=True``; their LLM children are kept, one level up.
    ``span_types`` limits which Galileo types are kept (default: all five).

    Records go through the same pipeline as decorated functions: a span whose galileo parent's
    trace was already sent goes out as a late span. Nothing here raises into the application.
    Spans made by ``configure(otel=True)`` (tracer ``galileo_sessions``) are already records
    and are skipped.
    """

    def __init__(self, span_types: Iterable[str] | None = None, *,
                 include_non_llm: bool = False) -> None:
        types = frozenset(span_types) if span_types is not None else _ALL_TYPES
        unknown = types - _ALL_TYPES
        if unknown:
            raise ValueError(f"unknown span types {sorted(unknown)}; valid: {sorted(_ALL_TYPES)}")
        self._types = types
        self._include_non_llm = include_non_llm
        self._entries: dict[tuple[int, int], _Entry] = {}

    def _kept(self, kind: str | None) -> str | None:
        if kind is None:
            return "workflow" if self._include_non_llm and "workflow" in self._types else None
        if kind == "trace":
            kind = "workflow"
        return kind if kind in self._types else None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            self._start(span)
        except Exception as exc:
            internal_error("otel processor start", exc)

    def _start(self, span: Span) -> None:
        scope = span.instrumentation_scope
        if scope is not None and scope.name == TRACER_NAME:
            return
        ctx = span.context
        if ctx is None:
            return
        rt = _runtime.current or _runtime.get()
        if not rt.enabled:
            return
        parent: SpanNode | None = None
        if span.parent is not None:
            entry = self._entries.get((span.parent.trace_id, span.parent.span_id))
            if entry is not None:
                parent = entry.node if entry.node is not None else entry.parent
        if parent is None:
            parent = current_span_var.get()
        attrs = span.attributes or {}
        kind = self._kept(classify(attrs))
        key = (ctx.trace_id, ctx.span_id)
        if kind is None:
            self._entries[key] = _Entry(None, parent)
            return
        session_id = attrs.get("galileo.session.id")
        node = _open(rt, kind, span.name, parent, created_ns=span.start_time or _clock.wall_ns(),
                     session_id=session_id if isinstance(session_id, str) else None)
        self._entries[key] = _Entry(node, None)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            self._end(span)
        except Exception as exc:
            internal_error("otel processor end", exc)

    def _end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        entry = self._entries.pop((ctx.trace_id, ctx.span_id), None)
        if entry is None:
            return
        rt = _runtime.current or _runtime.get()
        if not rt.enabled:
            return
        attrs: Mapping[str, Any] = span.attributes or {}
        kind = self._kept(classify(attrs))
        node = entry.node
        if node is None:
            if kind is None:
                return  # not an LLM concern: dropped
            node = _open(rt, kind, span.name, entry.parent,
                         created_ns=span.start_time or _clock.wall_ns(), session_id=None)
        elif kind is not None and kind != node.type and not node.children:
            node.type = kind  # attributes set after the start told us more
        status = span.status
        error = status is not None and status.status_code is StatusCode.ERROR
        mapped = map_span(attrs, type_=node.type, error=error,
                          status_message=status.description if status is not None else None,
                          events=[(event.name, event.attributes or {}) for event in span.events],
                          max_bytes=rt.max_bytes)
        apply(mapped, node)
        name = span.name
        if name and name != node.name:
            node.name = name
        root = node.root
        if root.implicit and node.parent is root and not root.input:
            root.input = _input_text(node.input)
        if span.start_time is not None and span.end_time is not None:
            # close_span measures from start_ns: make that the span's own duration
            node.start_ns = _clock.monotonic_ns() - max(0, span.end_time - span.start_time)
        ops = close_span(rt, node, has_output=False)
        if ops:
            try:
                submit_reliable(rt, ops)
            except Exception as exc:  # reliable delivery errors stay out of on_end
                logger.error("galileo_sessions: reliable delivery of an OTel span failed: %s",
                             exc)

    def shutdown(self) -> None:
        self._entries.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        result = _runtime.flush(timeout_millis / 1000.0)
        return not result.pending


class GalileoSessionStamper(SpanProcessor):
    """Stamps ``galileo.session.id`` (and the conversation id), ``galileo.project.name`` and
    ``galileo.logstream.name`` (or ``galileo.experiment.id``) on every span as it starts.

    Use it with ``galileo_otlp_exporter()`` so spans sent straight to Galileo's OTLP endpoint
    land in the current galileo session.
    """

    def __init__(self, project: str | None = None, log_stream: str | None = None,
                 experiment_id: str | None = None) -> None:
        settings = _settings()
        self._static: dict[str, str] = {
            "galileo.project.name": project or (settings.project if settings else "default")}
        experiment = experiment_id or (settings.experiment_id if settings else None)
        if experiment:
            self._static["galileo.experiment.id"] = experiment
        else:
            self._static["galileo.logstream.name"] = log_stream or (
                settings.log_stream if settings else "default")

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attrs: dict[str, Any] = dict(self._static)
            session = current_session_var.get()
            if session is not None:
                attrs.update(session_attributes(session))
                if session.external_id:  # lets the receiver find the session by external id
                    attrs["session.id"] = session.external_id
            node = current_span_var.get()
            if node is not None:
                attrs["galileo.trace.id"] = node.root.id
                attrs["galileo.parent.id"] = node.id
            span.set_attributes(attrs)
        except Exception as exc:
            internal_error("otel stamper", exc)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _settings() -> Any:
    runtime = _runtime.current
    if runtime is not None:
        return runtime.settings
    from ._config import Settings

    try:
        return Settings.from_options({})
    except Exception:
        return None


def galileo_otlp_exporter(api_url: str | None = None, api_key: str | None = None,
                          project: str | None = None, log_stream: str | None = None,
                          experiment_id: str | None = None, **kwargs: Any) -> Any:
    """An ``OTLPSpanExporter`` (protobuf over HTTP) for ``{api}/otel/traces``.

    Sends ``Galileo-API-Key``, ``project`` and ``logstream`` (or ``experimentid``) headers.
    Values not given come from the library's configuration (``configure()`` or the
    ``GALILEO_*`` environment). Other keyword arguments (``timeout``, ``compression``,
    ``headers``, ...) go to ``OTLPSpanExporter``.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from ._client import derive_api_url

    settings = _settings()
    base = derive_api_url(api_url=api_url or (settings.api_url if settings else None),
                          console_url=settings.console_url if settings else None)
    key = api_key or (settings.api_key if settings else None)
    headers: dict[str, str] = {}
    if key:
        headers["Galileo-API-Key"] = key
    headers["project"] = project or (settings.project if settings else "default")
    experiment = experiment_id or (settings.experiment_id if settings else None)
    if experiment:
        headers["experimentid"] = experiment
    else:
        headers["logstream"] = log_stream or (settings.log_stream if settings else "default")
    extra = kwargs.pop("headers", None)
    if extra:
        headers.update(extra)
    return OTLPSpanExporter(endpoint=f"{base}/otel/traces", headers=headers, **kwargs)
