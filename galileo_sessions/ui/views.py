"""What the pages show, computed from the store's dicts: pure functions, no HTTP, no HTML.

Why a layer between the store and the templates: the templates then only lay out ready values
(labels, CSS percentages, blocks of input/output), and everything that can go wrong with odd
records (missing durations, strings holding JSON, messages with tool calls, unknown types) is
decided here, in plain Python that tests can call. Nothing here escapes HTML: the templates
autoescape every value, so no value is ever trusted as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["IoBlock", "Message", "Node", "Snippet", "TraceView", "duration_label",
           "io_blocks", "parse_meta", "short_time", "snippet", "trace_views"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_BAR_PCT = 0.4
NO_VALUE = "\N{EN DASH}"


# -- small formatting helpers ---------------------------------------------------------------

def parse_time(value: Any) -> int | None:
    """Microseconds since the epoch for the store's ISO timestamps (None if unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def short_time(value: Any) -> str:
    """``2026-11-28 02:45:15`` (UTC) for an ISO timestamp; the raw value if unreadable."""
    if not isinstance(value, str):
        return ""
    return value[:19].replace("T", " ") if len(value) >= 19 else value


def duration_label(ns: Any) -> str:
    if not isinstance(ns, (int, float)) or isinstance(ns, bool) or ns < 0:
        return NO_VALUE
    ms = ns / 1e6
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_meta(values: Iterable[str]) -> dict[str, str]:
    """``key=value`` filters (several per value, separated by commas); blanks ignored."""
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if sep and key.strip():
                out[key.strip()] = val.strip()
    return out


# -- input / output -------------------------------------------------------------------------

@dataclass
class Message:
    role: str
    text: str
    extra: str = ""  # tool calls, non-text parts: pretty JSON


@dataclass
class IoBlock:
    """One labelled value: ``kind`` is text, json, chat or docs."""

    label: str
    kind: str
    text: str = ""
    messages: list[Message] = field(default_factory=list)
    docs: list[tuple[str, str]] = field(default_factory=list)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and "role" in value


def _message(msg: Mapping[str, Any]) -> Message:
    content = msg.get("content")
    texts: list[str] = []
    extras: list[Any] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                extras.append(part)
    elif content is not None:
        extras.append(content)
    calls = msg.get("tool_calls")
    if calls:
        extras.append({"tool_calls": calls})
    if msg.get("tool_call_id"):
        extras.append({"tool_call_id": msg["tool_call_id"]})
    extra = "\n".join(_pretty(e) for e in extras)
    return Message(role=str(msg.get("role", "?")), text="\n".join(texts), extra=extra)


def _block(label: str, value: Any) -> IoBlock:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                return IoBlock(label, "json", text=_pretty(json.loads(stripped)))
            except ValueError:
                pass
        return IoBlock(label, "text", text=value)
    if _is_message(value):
        return IoBlock(label, "chat", messages=[_message(value)])
    if isinstance(value, list) and value and all(_is_message(v) for v in value):
        return IoBlock(label, "chat", messages=[_message(v) for v in value])
    if isinstance(value, list) and value and all(
            isinstance(v, Mapping) and "content" in v and "type" not in v for v in value):
        docs = [(str(v.get("content", "")), _pretty(v["metadata"]) if v.get("metadata") else "")
                for v in value]
        return IoBlock(label, "docs", docs=docs)
    return IoBlock(label, "json", text=_pretty(value))


def io_blocks(record: Mapping[str, Any]) -> list[IoBlock]:
    """Input, output and (when set) redacted twins of a record, ready to lay out."""
    blocks: list[IoBlock] = []
    for key, label in (("input", "Input"), ("output", "Output"),
                       ("redacted_input", "Redacted input"),
                       ("redacted_output", "Redacted output")):
        value = record.get(key)
        if value is None or (key == "input" and value in ("", [])):
            continue
        blocks.append(_block(label, value))
    return blocks


# -- trees on a time axis ---------------------------------------------------------------------

@dataclass
class Node:
    """One trace or span as a row of the tree."""

    id: str
    type: str
    name: str
    depth: int
    duration: str
    start_label: str
    bar_left: str
    bar_width: str
    status: str
    status_class: str
    tokens: str
    model: str
    error: str
    io: list[IoBlock]
    details: list[tuple[str, str]]
    children: list[Node] = field(default_factory=list)


@dataclass
class TraceView:
    root: Node
    created: str
    duration: str
    span_count: int
    error_count: int
    tokens: str
    axis_end: str
    session_left: str
    session_width: str
    incomplete: bool


def _status(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """(label, css class, error text) for a record."""
    meta = record.get("user_metadata") or {}
    code = _int(record.get("status_code"))
    error = ""
    if isinstance(meta, Mapping) and (meta.get("error.type") or meta.get("error.message")):
        error = ": ".join(str(meta[k]) for k in ("error.type", "error.message") if meta.get(k))
    if isinstance(meta, Mapping) and meta.get("cancelled") not in (None, "", "false", "False"):
        return "cancelled", "warn", error
    if code is not None and code >= 400:
        return f"error {code}", "err", error
    if error:
        return "error", "err", error
    return "ok", "ok", error


def _tokens(metrics: Mapping[str, Any]) -> tuple[int | None, int | None]:
    return _int(metrics.get("num_input_tokens")), _int(metrics.get("num_output_tokens"))


def _token_label(inp: int | None, out: int | None) -> str:
    if inp is None and out is None:
        return ""
    return f"{inp if inp is not None else '?'}→{out if out is not None else '?'} tok"


def _pct(value: float) -> str:
    return f"{max(0.0, min(100.0, value)):.3f}%"


def _details(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [("id", str(record.get("id", "")))]
    for key in ("model", "temperature", "finish_reason", "tool_call_id", "agent_type",
                "status_code", "created_at", "external_id"):
        value = record.get(key)
        if value is not None and value != "":
            rows.append((key, str(value)))
    metrics = record.get("metrics") or {}
    if isinstance(metrics, Mapping):
        for key, value in metrics.items():
            shown = duration_label(value) if key.endswith("_ns") else str(value)
            rows.append((key, shown))
    meta = record.get("user_metadata") or {}
    if isinstance(meta, Mapping):
        rows.extend((f"metadata · {k}", str(v)) for k, v in meta.items())
    tags = record.get("tags")
    if tags:
        rows.append(("tags", ", ".join(str(t) for t in tags)))
    return rows


def _end_us(record: Mapping[str, Any], start: int) -> int:
    metrics = record.get("metrics") or {}
    ns = _int(metrics.get("duration_ns")) if isinstance(metrics, Mapping) else None
    return start + (ns // 1000 if ns and ns > 0 else 0)


def _walk(record: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    stack = [record]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("spans") or []))


def _build(record: Mapping[str, Any], depth: int, t0: int, total: int,
           fallback: int) -> Node:
    start = parse_time(record.get("created_at"))
    start = fallback if start is None else start
    metrics = record.get("metrics") or {}
    metrics = metrics if isinstance(metrics, Mapping) else {}
    dur_ns = _int(metrics.get("duration_ns"))
    dur_us = dur_ns / 1000 if dur_ns and dur_ns > 0 else 0.0
    left = (start - t0) / total * 100
    width = max(dur_us / total * 100, MIN_BAR_PCT)
    if left + width > 100:
        left = max(0.0, 100 - width)
    label, css, error = _status(record)
    inp, out = _tokens(metrics)
    node = Node(
        id=str(record.get("id", "")), type=str(record.get("type", "span")),
        name=str(record.get("name") or "(unnamed)"), depth=depth,
        duration=duration_label(dur_ns), start_label=f"+{duration_label((start - t0) * 1000)}",
        bar_left=_pct(left), bar_width=_pct(width), status=label, status_class=css,
        tokens=_token_label(inp, out), model=str(record.get("model") or ""),
        error=error, io=io_blocks(record),
        details=_details(record),
    )
    node.children = [_build(child, depth + 1, t0, total, start)
                     for child in record.get("spans") or []]
    return node


def trace_views(traces: Sequence[Mapping[str, Any]]) -> list[TraceView]:
    """The session's traces (oldest first) as trees, each on its own time axis, and placed on
    the session's shared axis (``session_left``/``session_width``)."""
    spans: list[tuple[Mapping[str, Any], int, int]] = []
    for trace in traces:
        start = parse_time(trace.get("created_at")) or 0
        end = max((_end_us(r, parse_time(r.get("created_at")) or start) for r in _walk(trace)),
                  default=start)
        spans.append((trace, start, max(end, start)))
    s0 = min((s for _, s, _ in spans), default=0)
    s1 = max((e for _, _, e in spans), default=0)
    s_total = max(s1 - s0, 1)
    views: list[TraceView] = []
    for trace, start, end in spans:
        total = max(end - start, 1)
        root = _build(trace, 0, start, total, start)
        records = list(_walk(trace))
        inp = sum(_tokens(r.get("metrics") or {})[0] or 0 for r in records
                  if r.get("type") == "llm")
        out = sum(_tokens(r.get("metrics") or {})[1] or 0 for r in records
                  if r.get("type") == "llm")
        has_llm_tokens = any(any(t is not None for t in _tokens(r.get("metrics") or {}))
                             for r in records if r.get("type") == "llm")
        errors = sum(1 for r in records if _status(r)[1] == "err")
        left = (start - s0) / s_total * 100
        width = max((end - start) / s_total * 100, MIN_BAR_PCT)
        views.append(TraceView(
            root=root, created=short_time(trace.get("created_at")),
            duration=root.duration if root.duration != NO_VALUE else duration_label(total * 1000),
            span_count=len(records) - 1, error_count=errors,
            tokens=_token_label(inp, out) if has_llm_tokens else "",
            axis_end=duration_label(total * 1000), session_left=_pct(min(left, 100 - width)),
            session_width=_pct(width), incomplete=trace.get("is_complete") is False))
    return views


# -- search -----------------------------------------------------------------------------------

@dataclass
class Snippet:
    field: str
    before: str
    match: str
    after: str


def snippet(field_name: str, text: str, needle: str, radius: int = 90) -> Snippet | None:
    """The part of ``text`` around the first (ASCII case-insensitive) match of ``needle``."""
    if not text or not needle:
        return None
    at = text.lower().find(needle.lower())
    if at < 0:
        return None
    lo, hi = max(0, at - radius), min(len(text), at + len(needle) + radius)
    return Snippet(field_name, ("…" if lo else "") + text[lo:at], text[at:at + len(needle)],
                   text[at + len(needle):hi] + ("…" if hi < len(text) else ""))
