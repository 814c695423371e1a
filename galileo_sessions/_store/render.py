"""Terminal views of sessions and traces: pure functions from record dicts to lines of text.

Why pure: the CLI loads records from the local store today and from a running dev server
later; both give the same dicts (the read routes' shapes), so rendering must not care where
they came from, and tests can check the output without a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["one_line", "render_session", "render_sessions", "render_trace", "session_chains",
           "short_id", "to_ascii"]

IO_WIDTH = 60
_ASCII = str.maketrans({"│": "|", "├": "+", "└": "`", "─": "-", "●": "*", "·": "-",
                        "→": "->", "…": "...", "▸": ">"})


def short_id(value: str | None) -> str:
    """The first 8 characters of an id (what ``show`` accepts as a prefix); ``-`` for none."""
    return value[:8] if value else "-"


def to_ascii(line: str) -> str:
    """The line with box-drawing characters replaced, for terminals that cannot show them."""
    return line.translate(_ASCII)


def _time(value: Any) -> str:
    return str(value).replace("T", " ")[:19] if value else "-"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _metadata(meta: Any, width: int = 40) -> str:
    if not isinstance(meta, Mapping) or not meta:
        return ""
    return _clip(", ".join(f"{k}={v}" for k, v in meta.items()), width)


# -- session chains ------------------------------------------------------------------------------

def session_chains(sessions: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Group sessions into chains by following ``previous_session_id``.

    A chain starts at a session whose predecessor is absent (none, or not among ``sessions``)
    and lists its successors depth-first, oldest first. Chains come newest activity first.
    """
    items = sorted(sessions, key=lambda s: (str(s.get("created_at") or ""), str(s["id"])))
    by_id = {s["id"]: s for s in items}
    successors: dict[str, list[Mapping[str, Any]]] = {}
    roots: list[Mapping[str, Any]] = []
    for session in items:
        prev = str(session.get("previous_session_id") or "")
        if prev in by_id and prev != session["id"]:
            successors.setdefault(prev, []).append(session)
        else:
            roots.append(session)
    chains: list[list[Mapping[str, Any]]] = []
    seen: set[str] = set()

    def walk(start: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        chain: list[Mapping[str, Any]] = []
        stack = [start]
        while stack:
            node = stack.pop()
            if node["id"] in seen:
                continue
            seen.add(node["id"])
            chain.append(node)
            stack.extend(reversed(successors.get(node["id"], [])))
        return chain

    for root in roots:
        chains.append(walk(root))
    for session in items:  # sessions caught in a cycle of links have no root: still show them
        if session["id"] not in seen:
            chains.append(walk(session))
    chains.sort(key=lambda c: max(str(s.get("created_at") or "") for s in c), reverse=True)
    return chains


def render_sessions(sessions: Sequence[Mapping[str, Any]],
                    totals: Mapping[str, int] | None = None) -> list[str]:
    """The ``sessions`` view: one aligned table, chains separated by a blank line."""
    if not sessions:
        return ["No sessions recorded yet."]
    chains = session_chains(sessions)
    header = ("CHAIN", "SESSION", "NAME", "EXTERNAL ID", "PREV", "TRACES", "CREATED",
              "METADATA")
    rows: list[tuple[str, ...] | None] = []
    for number, chain in enumerate(chains, 1):
        if number > 1:
            rows.append(None)
        for i, s in enumerate(chain):
            rows.append((
                str(number) if i == 0 else "",
                short_id(s["id"]),
                _clip(str(s.get("name") or "(unnamed)"), 28),
                _clip(str(s.get("external_id") or "-"), 24),
                short_id(s.get("previous_session_id")),
                str(s.get("num_traces", 0)),
                _time(s.get("created_at")),
                _metadata(s.get("user_metadata")),
            ))
    widths = [max(len(r[i]) for r in [header, *(r for r in rows if r)]) for i in range(8)]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i == 5 else c.ljust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    lines = [fmt(header)]
    lines += [fmt(r) if r else "" for r in rows]
    chain_word = "chain" if len(chains) == 1 else "chains"
    summary = f"{len(sessions)} session(s) in {len(chains)} {chain_word}"
    if totals is not None:
        summary += (f"; the store holds {totals.get('sessions', 0)} sessions, "
                    f"{totals.get('traces', 0)} traces, {totals.get('spans', 0)} spans")
    lines += ["", summary]
    return lines


# -- one session, its traces as trees ------------------------------------------------------------

def render_session(session: Mapping[str, Any]) -> list[str]:
    """The ``show`` view: a header, then each trace (time order) as a tree."""
    traces = sorted(session.get("traces") or [], key=lambda t: str(t.get("created_at") or ""))
    lines = [
        f"Session {session['id']}",
        f"  name         {session.get('name') or '(unnamed)'}",
        f"  external id  {session.get('external_id') or '-'}",
        f"  previous     {session.get('previous_session_id') or '-'}",
        f"  metadata     {_metadata(session.get('user_metadata'), 200) or '-'}",
        f"  created      {_time(session.get('created_at'))}",
        f"  traces       {len(traces)}",
    ]
    for trace in traces:
        lines.append("")
        lines += render_trace(trace)
    if not traces:
        lines += ["", "(no traces in this session)"]
    return lines


def render_trace(trace: Mapping[str, Any]) -> list[str]:
    """One trace and its spans as an indented tree drawn with box characters."""
    lines: list[str] = []
    _node(lines, trace, "", "● ", "")
    return lines


def _node(lines: list[str], node: Mapping[str, Any], prefix: str, connector: str,
          child_prefix: str) -> None:
    children = list(node.get("spans") or [])
    lines.append(prefix + connector + _label(node))
    detail = child_prefix + ("│ " if children else "  ")
    for key, tag in (("input", "in: "), ("output", "out:")):
        text = one_line(node.get(key))
        if text:
            lines.append(f"{detail}{tag} {text}")
    for i, child in enumerate(children):
        last = i == len(children) - 1
        _node(lines, child, child_prefix, "└── " if last else "├── ",
              child_prefix + ("    " if last else "│   "))


def _label(node: Mapping[str, Any]) -> str:
    kind = str(node.get("type") or "?")
    parts = [f"{kind} {node['name']}" if node.get("name") else kind]
    raw_metrics = node.get("metrics")
    metrics: Mapping[str, Any] = raw_metrics if isinstance(raw_metrics, Mapping) else {}
    parts.append(_duration(metrics.get("duration_ns")))
    code = node.get("status_code")
    parts.append(f"error {code}" if isinstance(code, int) and code >= 400 else "ok")
    if kind == "llm":
        extra = [str(node["model"])] if node.get("model") else []
        tin, tout = metrics.get("num_input_tokens"), metrics.get("num_output_tokens")
        if tin is not None or tout is not None:
            extra.append(f"{tin if tin is not None else '?'}→"
                         f"{tout if tout is not None else '?'} tokens")
        parts += extra
    if kind == "trace":
        parts.append(_time(node.get("created_at")))
        if node.get("is_complete") is False:
            parts.append("incomplete")
    return " · ".join(parts)


def _duration(ns: Any) -> str:
    if not isinstance(ns, (int, float)) or isinstance(ns, bool):
        return "- ms"
    ms = ns / 1e6
    return f"{ms:.2f} ms" if ms < 1 else f"{ms:,.1f} ms"


def one_line(value: Any, width: int = IO_WIDTH) -> str:
    """A record's input or output summarised on one line of at most ``width`` characters."""
    text = re.sub(r"\s+", " ", _summary(value)).strip()
    return _clip(text, width)


def _summary(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "role" in value:
            return _message(value)
        if "action" in value and "matched" in value:
            return f"{value['action']} (matched={value['matched']})"
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, list):
        if not value:
            return ""
        if all(isinstance(v, Mapping) and "role" in v for v in value):
            more = f"[{len(value)} messages] " if len(value) > 1 else ""
            return more + _message(value[-1])
        if all(isinstance(v, Mapping) and "type" in v for v in value):
            return " ".join(_part(v) for v in value)
        if all(isinstance(v, Mapping) and "content" in v for v in value):
            noun = "document" if len(value) == 1 else "documents"
            return f"{len(value)} {noun}: {value[0].get('content', '')}"
    return json.dumps(value, ensure_ascii=False, default=str)


def _part(part: Mapping[str, Any]) -> str:
    if part.get("type") == "text":
        return str(part.get("text", ""))
    if part.get("type") == "file":
        return "[file]"
    return f"[{part.get('modality') or part.get('type')}]"


def _message(msg: Mapping[str, Any]) -> str:
    content = msg.get("content")
    text = _summary(content) if content is not None else ""
    calls = msg.get("tool_calls") or []
    names = [str((c.get("function") or {}).get("name", "?")) for c in calls
             if isinstance(c, Mapping)]
    if names:
        text = (text + " " if text else "") + "→ " + ", ".join(f"{n}()" for n in names)
    return f"{msg.get('role', '?')}: {text}"
