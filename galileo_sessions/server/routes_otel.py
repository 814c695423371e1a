"""``POST /otel/traces``: OTLP/HTTP spans into the store (galileo-wire.md §12).

The body is an OTLP ``ExportTraceServiceRequest`` (protobuf, or OTLP JSON with
``Content-Type: application/json``; ``Content-Encoding: gzip`` is understood). Decoding needs
``opentelemetry-proto``; without it the route answers 501 with a message saying so, and the
rest of the server works as before.

Headers ``project`` and ``logstream`` (names; created when missing) or ``experimentid`` pick
the target; the API key is checked by the front door like on every route.

Each span's attributes (resource attributes under span attributes) go through the same
mapping as ``galileo_sessions.otel.SessionSpanProcessor`` (``_otel_mapping``); spans outside
LLM concerns are left out and their children lifted to the nearest kept ancestor. Spans are
grouped by OTel trace id into Galileo traces (trace UUID = the 128-bit OTel trace id; span
UUID = the trace id's first 64 bits + the span id), filed under the session named by
``galileo.session.id``, else by ``session.id`` as external id (found or created). Spans whose
parent has not arrived yet wait (in memory, up to ``PENDING_SECONDS``) for it, so children
exported before their parent still land in one tree.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from galileo_sessions._otel_mapping import apply, classify, map_span
from galileo_sessions._records import SpanNode
from galileo_sessions._spans import _as_text, _input_text
from galileo_sessions._store import Store
from galileo_sessions._wire import build_tree
from galileo_sessions.exceptions import NotFoundError
from galileo_sessions.server.deps import store_of

__all__ = ["PENDING_SECONDS", "OtlpSpan", "decode_request", "ingest_otlp", "router"]

PENDING_SECONDS = 30.0
_PENDING_LIMIT = 10_000

router = APIRouter()


@dataclass
class OtlpSpan:
    """One decoded OTLP span, attributes already merged with its resource's."""

    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    parent_id: str  # 16 hex or ""
    name: str
    start_ns: int
    end_ns: int
    attrs: dict[str, Any]
    error: bool = False
    status_message: str | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    received: float = 0.0


class ProtoMissing(RuntimeError):
    pass


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(items: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in items:
        value = _any_value(kv.value)
        out[kv.key] = tuple(value) if isinstance(value, list) else value
    return out


def decode_request(body: bytes, content_type: str) -> list[OtlpSpan]:
    """The spans of an OTLP trace export body (protobuf or OTLP JSON)."""
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ProtoMissing(str(exc)) from None
    request = ExportTraceServiceRequest()
    if "json" in content_type:
        from google.protobuf import json_format  # type: ignore[import-untyped]

        json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), request)
    else:
        request.ParseFromString(body)
    now = time.monotonic()
    spans: list[OtlpSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = {**resource, **_attributes(span.attributes)}
                spans.append(OtlpSpan(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex(), name=span.name,
                    start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
                    attrs=attrs, error=span.status.code == 2,
                    status_message=span.status.message or None,
                    events=[(e.name, _attributes(e.attributes)) for e in span.events],
                    received=now))
    return spans


def _hex_ids_to_base64(doc: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    for resource_spans in doc.get("resourceSpans", ()) if isinstance(doc, dict) else ():
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for item in (span, *span.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        value = item.get(key)
                        if isinstance(value, str) and value:
                            with contextlib.suppress(ValueError):  # else: already base64
                                item[key] = base64.b64encode(bytes.fromhex(value)).decode()
    return doc


def _trace_uuid(trace_hex: str) -> str:
    return str(uuid.UUID(hex=trace_hex.rjust(32, "0")[:32]))


def _span_uuid(trace_hex: str, span_hex: str) -> str:
    return str(uuid.UUID(hex=trace_hex.rjust(32, "0")[:16] + span_hex.rjust(16, "0")[:16]))


class _Pending:
    """Spans waiting for their parent, per OTel trace id (process-wide, bounded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_trace: dict[tuple[int, str], list[OtlpSpan]] = {}

    def take(self, key: tuple[int, str]) -> list[OtlpSpan]:
        with self.lock:
            return self.by_trace.pop(key, [])

    def put(self, key: tuple[int, str], spans: list[OtlpSpan]) -> None:
        with self.lock:
            self.by_trace.setdefault(key, []).extend(spans)
            total = sum(len(v) for v in self.by_trace.values())
            while total > _PENDING_LIMIT and self.by_trace:
                oldest = next(iter(self.by_trace))
                total -= len(self.by_trace.pop(oldest))

    def expired(self, store_key: int, now: float) -> list[tuple[tuple[int, str], list[OtlpSpan]]]:
        with self.lock:
            keys = [k for k, v in self.by_trace.items() if k[0] == store_key
                    and v and now - min(s.received for s in v) > PENDING_SECONDS]
            return [(k, self.by_trace.pop(k)) for k in keys]


_pending = _Pending()


def _exists(store: Store, project_id: str, record_id: str, *, trace: bool) -> bool:
    try:
        if trace:
            store.get_trace(project_id, record_id)
        else:
            store.get_span(project_id, record_id)
    except NotFoundError:
        return False
    return True


def _node(span: OtlpSpan, parent: SpanNode | None, kind: str) -> SpanNode:
    node = SpanNode(kind, span.name, parent, span.start_ns, 0)
    node.id = _span_uuid(span.trace_id, span.span_id)
    mapped = map_span(span.attrs, type_=kind, error=span.error,
                      status_message=span.status_message, events=span.events)
    apply(mapped, node)
    node.duration_ns = max(0, span.end_ns - span.start_ns)
    node.ended = True
    return node


def _session_fields(spans: list[OtlpSpan]) -> list[dict[str, Any]]:
    """Ways to name the trace's session, best first: server id, then external id."""
    out: list[dict[str, Any]] = []
    for span in spans:
        sid = span.attrs.get("galileo.session.id")
        if isinstance(sid, str) and sid:
            with contextlib.suppress(ValueError):
                out.append({"session_id": str(uuid.UUID(sid))})
                break
    for span in spans:
        external = span.attrs.get("session.id") or span.attrs.get("galileo.session.external_id")
        if isinstance(external, str) and external:
            out.append({"session_external_id": external})
            break
    return out


def _ingest_trace(store: Store, project_id: str, envelope: dict[str, Any], trace_hex: str,
                  spans: list[OtlpSpan], *, force: bool) -> tuple[int, list[OtlpSpan]]:
    """Ingest what can be placed of one OTel trace; return (records, spans still waiting)."""
    by_id = {s.span_id: s for s in spans}
    kinds: dict[str, str | None] = {}
    for span in spans:
        kind = classify(span.attrs)
        kinds[span.span_id] = kind

    def kept_ancestor(span: OtlpSpan) -> tuple[str | None, str]:
        """(nearest kept ancestor in this batch, or None; the first id outside the batch)."""
        parent = span.parent_id
        seen = 0
        while parent and parent in by_id and seen < len(by_id):
            if kinds[parent] is not None:
                return parent, ""
            parent = by_id[parent].parent_id
            seen += 1
        return None, parent

    trace_uuid = _trace_uuid(trace_hex)
    nodes: dict[str, SpanNode] = {}
    roots: list[tuple[OtlpSpan, str]] = []  # (span, outside parent hex or "")
    ordered = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
    children_of: dict[str | None, list[OtlpSpan]] = {}
    for span in ordered:
        if kinds[span.span_id] is None:
            continue
        ancestor, outside = kept_ancestor(span)
        children_of.setdefault(ancestor, []).append(span)
        if ancestor is None:
            roots.append((span, outside))

    def build(span: OtlpSpan, parent: SpanNode | None) -> SpanNode:
        kind = kinds[span.span_id] or "workflow"
        node = _node(span, parent, "workflow" if kind == "trace" else kind)
        nodes[span.span_id] = node
        for child in children_of.get(span.span_id, ()):
            build(child, node)
        return node

    trace_known = _exists(store, project_id, trace_uuid, trace=True)
    waiting: list[OtlpSpan] = []
    records = 0
    new_roots: list[OtlpSpan] = []
    for span, outside in roots:
        if not outside:
            new_roots.append(span)
            continue
        parent_uuid = _span_uuid(trace_hex, outside)
        if trace_known and _exists(store, project_id, parent_uuid, trace=False):
            target = parent_uuid
        elif force:
            if trace_known:
                target = trace_uuid
            else:
                new_roots.append(span)
                continue
        else:
            waiting.extend(_subtree(span, children_of))
            continue
        node = build(span, None)
        store.ingest_spans(project_id, {**envelope, "trace_id": trace_uuid,
                                        "parent_id": target,
                                        "spans": [build_tree(node, None)]})
        records += 1
    if new_roots:
        if trace_known:
            for span in new_roots:
                node = build(span, None)
                store.ingest_spans(project_id, {**envelope, "trace_id": trace_uuid,
                                                "parent_id": trace_uuid,
                                                "spans": [build_tree(node, None)]})
        else:
            first = new_roots[0]
            root = SpanNode("trace", first.name, None, first.start_ns, 0)
            root.id = trace_uuid
            built = [build(span, root) for span in new_roots]
            root.input = _input_text(built[0].input)
            root.output = _as_text(built[-1].output)
            root.status_code = max((n.status_code or 200) for n in built)
            root.duration_ns = max(s.end_ns for s in new_roots) - first.start_ns
            root.ended = True
            body = {**envelope, "traces": [build_tree(root, None)]}
            for session in [*_session_fields(spans), {}]:
                try:
                    store.ingest_traces(project_id, {**body, **session})
                    break
                except NotFoundError:  # e.g. a client-side session id: try the next way
                    if not session:
                        raise
        records += len(new_roots)
    return records, waiting


def _subtree(span: OtlpSpan, children_of: Mapping[str | None, list[OtlpSpan]]) -> list[OtlpSpan]:
    out = [span]
    for child in children_of.get(span.span_id, ()):
        out.extend(_subtree(child, children_of))
    return out


def ingest_otlp(store: Store, spans: list[OtlpSpan], *, project: str, log_stream: str | None,
                experiment_id: str | None) -> dict[str, Any]:
    """Map ``spans`` into ``store``; return counts (traces touched, spans waiting)."""
    project_id, stream_id = store.ensure_target(project, log_stream or "default")
    envelope: dict[str, Any] = {"logging_method": "python_client"}
    if experiment_id:
        envelope["experiment_id"] = experiment_id
    else:
        envelope["log_stream_id"] = stream_id
    store_key = id(store)
    groups: dict[str, list[OtlpSpan]] = {}
    for span in spans:
        groups.setdefault(span.trace_id, []).append(span)
    records = waiting = 0
    for trace_hex, fresh in groups.items():
        key = (store_key, trace_hex)
        group = _pending.take(key) + fresh
        count, left = _ingest_trace(store, project_id, envelope, trace_hex, group, force=False)
        records += count
        if left:
            _pending.put(key, left)
            waiting += len(left)
    for key, group in _pending.expired(store_key, time.monotonic()):
        count, _ = _ingest_trace(store, project_id, envelope, key[1], group, force=True)
        records += count
    return {"records": records, "waiting": waiting}


async def otel_traces(request: Request) -> Response:
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            return JSONResponse({"detail": "body is not valid gzip"}, status_code=400)
    content_type = request.headers.get("content-type", "application/x-protobuf").lower()
    if "protobuf" not in content_type and "json" not in content_type:
        return JSONResponse({"detail": f"unsupported content type {content_type!r}; send "
                                       "application/x-protobuf or application/json"},
                            status_code=415)
    try:
        spans = decode_request(body, content_type)
    except ProtoMissing:
        return JSONResponse({"detail": "OTLP decoding needs opentelemetry-proto: pip install "
                                       "'galileo-sessions[server]'"}, status_code=501)
    except Exception as exc:
        return JSONResponse({"detail": f"not an OTLP ExportTraceServiceRequest: {exc}"},
                            status_code=400)
    project = request.headers.get("project") or "default"
    result = await run_in_threadpool(
        ingest_otlp, store_of(request), spans, project=project,
        log_stream=request.headers.get("logstream"),
        experiment_id=request.headers.get("experimentid"))
    del result
    if "json" in content_type:
        return JSONResponse({})
    return Response(content=b"", media_type="application/x-protobuf")


router.add_api_route("/otel/traces", otel_traces, methods=["POST"])
router.add_api_route("/otel/v1/traces", otel_traces, methods=["POST"])
