"""Sessions and traces across services: ``inject``, ``extract`` and ``continue_from``.

The caller puts its session and its current span into request headers::

    headers = gs.inject({})          # or gs.inject(request.headers) to add to existing ones
    httpx.post(url, json=..., headers=headers)

and the service continues them (``galileo_sessions.asgi.SessionMiddleware`` does this)::

    with gs.continue_from(request.headers):
        handle(request)              # spans made here join the caller's trace and session

On the wire (all optional, read case-insensitively):

- W3C ``baggage``: ``galileo.session.id`` (server id), ``galileo.session.external_id``,
  ``galileo.trace.id`` and ``galileo.parent.id`` (the caller's trace and span, full UUIDs);
- W3C ``traceparent``: the caller's OTel span when OpenTelemetry is in use, else one built
  from the galileo ids (trace id = the trace UUID; span id = the first 64 bits of the span's);
- Galileo's own ``X-Galileo-Trace-ID`` / ``X-Galileo-Parent-ID`` (galileo-wire.md §11), also
  written by ``inject`` so the official SDK's middleware understands our calls.

Spans made inside ``continue_from`` are children of the caller's span. They end before the
caller's trace does, so they are sent as late spans (``POST .../spans`` with the caller's
``trace_id`` / ``parent_id``) and join the caller's tree once both sides have delivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

from . import _clock, _runtime
from ._context import current_session_var, current_span_var
from ._records import SessionHandle, SpanNode

__all__ = ["RemoteContext", "continue_from", "extract", "inject"]

_BAGGAGE_KEYS = ("galileo.session.id", "galileo.session.external_id", "galileo.trace.id",
                 "galileo.parent.id")
_MAX_BAGGAGE = 8192


@dataclass(frozen=True)
class RemoteContext:
    """What a request carried: the caller's session and span (any of them may be missing)."""

    session_id: str | None = None
    session_external_id: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    carrier: Mapping[str, str] | None = None  # traceparent / tracestate / baggage, for OTel

    def __bool__(self) -> bool:
        return bool(self.session_id or self.session_external_id or self.trace_id)


def _uuid(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def _lower(headers: Any) -> dict[str, str]:
    items = headers.items() if hasattr(headers, "items") else headers
    out: dict[str, str] = {}
    for raw_key, raw_value in items:
        key = (raw_key.decode("latin-1") if isinstance(raw_key, bytes) else str(raw_key)).lower()
        value = raw_value.decode("latin-1") if isinstance(raw_value, bytes) else str(raw_value)
        out[key] = f"{out[key]},{value}" if key in out and key == "baggage" else value
    return out


def parse_baggage(value: str) -> dict[str, str]:
    """``k=v;props,k2=v2`` -> ``{k: v}`` (percent-decoded; bad members are skipped)."""
    out: dict[str, str] = {}
    for member in value[:_MAX_BAGGAGE].split(","):
        pair = member.split(";", 1)[0]
        if "=" not in pair:
            continue
        key, _, raw = pair.partition("=")
        key = unquote(key.strip())
        if key:
            out[key] = unquote(raw.strip())
    return out


def _merge_baggage(existing: str | None, entries: Mapping[str, str]) -> str:
    members = [m for m in (existing or "").split(",") if m.strip()
               and unquote(m.split(";", 1)[0].split("=", 1)[0].strip()) not in entries]
    members.extend(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in entries.items())
    return ",".join(members)


def extract(headers: Any) -> RemoteContext | None:
    """The caller's session and span from request headers, or ``None`` if they carry none.

    ``headers`` is any mapping (or ASGI-style list of byte pairs); names are case-insensitive.
    """
    lower = _lower(headers)
    bag = parse_baggage(lower.get("baggage", ""))
    trace_id = _uuid(bag.get("galileo.trace.id")) or _uuid(lower.get("x-galileo-trace-id"))
    parent_id = _uuid(bag.get("galileo.parent.id")) or _uuid(lower.get("x-galileo-parent-id"))
    session_id = _uuid(bag.get("galileo.session.id"))
    external = bag.get("galileo.session.external_id") or None
    carrier: dict[str, str] = {k: lower[k] for k in ("traceparent", "tracestate", "baggage")
                               if k in lower}
    remote = RemoteContext(session_id, external, trace_id, parent_id if trace_id else None,
                           carrier or None)
    return remote if remote or "traceparent" in carrier else None


def _session_value(session: SessionHandle, *, can_wait: bool) -> str | None:
    if session._id is not None:
        return session._id
    if can_wait and not session.external_id:
        return session.wait(session.wait_timeout)
    return None


def inject(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Add the current session and span to ``headers`` (a new dict if ``None``); return it.

    Never blocks when a span is current (the trace ids are enough for the callee); outside
    any span, a session whose server id is still being created is waited for (bounded by the
    flush timeout) unless it has an external id, which is sent instead.
    """
    if headers is None:
        headers = {}
    node = current_span_var.get()
    session = current_session_var.get()
    if session is None and node is not None:
        session = node.root.session
    entries: dict[str, str] = {}
    if session is not None:
        sid = _session_value(session, can_wait=node is None)
        if sid:
            entries["galileo.session.id"] = sid
        if session.external_id:
            entries["galileo.session.external_id"] = session.external_id
    if node is not None:
        entries["galileo.trace.id"] = node.root.id
        entries["galileo.parent.id"] = node.id
        headers["X-Galileo-Trace-ID"] = node.root.id
        headers["X-Galileo-Parent-ID"] = node.id
    _inject_otel(headers, node)
    if entries:
        key = next((k for k in headers if k.lower() == "baggage"), "baggage")
        headers[key] = _merge_baggage(headers.get(key), entries)
    return headers


def _inject_otel(headers: MutableMapping[str, str], node: SpanNode | None) -> None:
    from opentelemetry import propagate
    from opentelemetry import trace as otel_trace

    if otel_trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)
        return
    if node is None or any(k.lower() == "traceparent" for k in headers):
        return
    trace_hex = node.root.id.replace("-", "")
    span_hex = node.id.replace("-", "")[:16]
    if len(trace_hex) == 32 and len(span_hex) == 16:
        headers["traceparent"] = f"00-{trace_hex}-{span_hex}-01"


class continue_from:
    """Continue the caller's session and trace (``with`` / ``async with``).

    ``source`` is request headers or a ``RemoteContext`` from ``extract``. Inside the block:

    - the caller's session is current (by server id, or resumed by external id);
    - with a trace id, spans are children of the caller's span and are delivered as late
      spans into the caller's trace (``gs.trace`` inside becomes a workflow span there);
    - the caller's OTel context is attached when no OTel span is current already.

    Headers without any of these make it a no-op.
    """

    def __init__(self, source: Any) -> None:
        self.remote = source if isinstance(source, RemoteContext) or source is None \
            else extract(source)
        self._tokens: list[Any] = []
        self._scope: Any = None

    def __enter__(self) -> RemoteContext | None:
        remote = self.remote
        if remote is None:
            return None
        rt = _runtime.current or _runtime.get()
        if not rt.enabled:
            return remote
        session: SessionHandle | None = None
        if remote.session_id:
            session = SessionHandle.known(remote.session_id,
                                          external_id=remote.session_external_id)
            self._tokens.append((current_session_var, current_session_var.set(session)))
        elif remote.session_external_id:
            from ._session import SessionScope

            self._scope = SessionScope(external_id=remote.session_external_id, resume=True,
                                       chain=False)
            session = self._scope.__enter__()
        if remote.trace_id:
            now, mono = _clock.wall_ns(), _clock.monotonic_ns()
            root = SpanNode("trace", "remote", None, now, mono)
            root.id = remote.trace_id
            root.session = session
            root.reliable = session.reliable if session is not None else rt.reliable
            root.delivered = True  # the caller sends it: ours go out as late spans
            parent = root
            if remote.parent_id and remote.parent_id != remote.trace_id:
                parent = SpanNode("workflow", "remote", root, now, mono)
                parent.id = remote.parent_id
                parent.delivered = True
            self._tokens.append((current_span_var, current_span_var.set(parent)))
        if remote.carrier and "traceparent" in remote.carrier:
            self._attach_otel(remote.carrier)
        return remote

    def _attach_otel(self, carrier: Mapping[str, str]) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import propagate
        from opentelemetry import trace as otel_trace

        if otel_trace.get_current_span().get_span_context().is_valid:
            return
        token = otel_context.attach(propagate.extract(dict(carrier)))
        self._tokens.append((None, token))

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        while self._tokens:
            var, token = self._tokens.pop()
            try:
                if var is None:
                    from opentelemetry import context as otel_context

                    otel_context.detach(token)
                else:
                    var.reset(token)
            except ValueError:
                if var is not None:
                    var.set(None)
        if self._scope is not None:
            scope, self._scope = self._scope, None
            scope.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> RemoteContext | None:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)
