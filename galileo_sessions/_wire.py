"""Turning what a function took and returned into Galileo's wire shapes (galileo-wire.md §7).

Per span type the API wants different shapes: llm input is a list of messages and its output
one assistant message; retriever output is a list of documents; everything else is text.
These functions never raise on odd values: whatever cannot be read becomes JSON text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _clock
from ._internal import log_once
from ._records import SpanNode
from ._serialize import TRUNCATION_MARKER, arguments_text, to_json_text, to_text

__all__ = [
    "CLIENT_VERSION", "LEAF_TYPES", "SPAN_TYPES", "build_tree", "build_tree_sized", "llm_input",
    "llm_output",
    "normalize_input", "normalize_output", "request_envelope",
]

CLIENT_VERSION = "galileo-sessions/0.1.0"
SPAN_TYPES = frozenset({"llm", "retriever", "tool", "workflow", "agent"})
LEAF_TYPES = frozenset({"llm", "control"})
_ROLES = frozenset({"agent", "assistant", "developer", "function", "system", "tool", "user"})
_PROMPT_NAMES = ("messages", "prompt", "input", "query", "question", "text", "content")


def request_envelope(reliable: bool) -> dict[str, Any]:
    """The fields every write request of ours carries besides the target ids."""
    return {"logging_method": "python_client", "client_version": CLIENT_VERSION,
            "reliable": reliable}


# -- inputs -------------------------------------------------------------------------------
def normalize_input(type_: str, arguments: dict[str, Any], max_bytes: int) -> Any:
    """The wire ``input`` of a span of ``type_`` called with ``arguments``."""
    if type_ == "llm":
        return llm_input(arguments, max_bytes)
    if type_ == "retriever" and len(arguments) == 1:
        (only,) = arguments.values()
        if isinstance(only, str):
            return to_text(only, max_bytes)
    return arguments_text(arguments, max_bytes)


def _message(value: Any, default_role: str, max_bytes: int) -> dict[str, Any]:
    role: Any = default_role
    content: Any = value
    extra: dict[str, Any] = {}
    if isinstance(value, Mapping):
        role = value.get("role", default_role)
        content = value.get("content", "")
        if isinstance(value.get("tool_call_id"), str):
            extra["tool_call_id"] = value["tool_call_id"]
        calls = value.get("tool_calls")
        if isinstance(calls, Sequence) and calls and not isinstance(calls, str):
            tool_calls = [_tool_call(c) for c in calls]
            if all(tool_calls):
                extra["tool_calls"] = tool_calls
    elif hasattr(value, "role") and hasattr(value, "content"):
        try:
            role, content = value.role, value.content
        except Exception:
            role, content = default_role, value
    if role not in _ROLES:
        role = default_role
    if content is None:
        content = ""
    text = content if isinstance(content, str) else to_json_text(content, max_bytes)
    return {"role": role, "content": to_text(text, max_bytes), **extra}


def _tool_call(call: Any) -> dict[str, Any] | None:
    if not isinstance(call, Mapping):
        return None
    fn = call.get("function")
    if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
        return None
    args = fn.get("arguments", "")
    arguments = args if isinstance(args, str) else to_json_text(args, 10_000)
    return {"id": str(call.get("id", "")),
            "function": {"name": fn["name"], "arguments": arguments}}


def _is_message_list(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, Mapping) and "role" in m for m in value))


_ITEM_OVERHEAD = 40  # JSON punctuation, role and keys of one message or document
_MIN_SHARE = 48  # fewer content bytes than this per item: drop items instead


def _share(sizes: list[int], budget: int) -> int | None:
    """Water-filling: the content cap per item so the sizes fit ``budget`` (None: no cap)."""
    remaining = budget
    ordered = sorted(sizes)
    for index, size in enumerate(ordered):
        share = remaining // (len(ordered) - index)
        if size > share:
            return max(share, 0)
        remaining -= size
    return None


def _bounded(items: list[dict[str, Any]], max_bytes: int, *, keep_newest: bool,
             marker: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    """Make a list of messages/documents fit ``max_bytes`` in total, with a visible marker.

    Each item is already bounded on its own; a long list is bounded as a whole: big contents
    are cut first (the small ones stay whole), and when even a minimal share per item does
    not fit, items are left out (the oldest messages but the first, or the last documents)
    and replaced by one marker item.
    """
    sizes = [len(str(item.get("content", "")).encode("utf-8", "replace")) for item in items]
    if sum(sizes) + _ITEM_OVERHEAD * len(items) <= max_bytes:
        return items
    room = max(1, max_bytes // (_MIN_SHARE + _ITEM_OVERHEAD) - 1)
    if len(items) > room:
        dropped = len(items) - room
        if keep_newest:
            kept = [items[0], *items[len(items) - room + 1:]] if room > 1 else items[-1:]
            kept_sizes = [sizes[0], *sizes[len(items) - room + 1:]] if room > 1 \
                else sizes[-1:]
            items = [kept[0], marker(dropped), *kept[1:]] if room > 1 \
                else [marker(dropped), *kept]
        else:
            kept, kept_sizes = items[:room], sizes[:room]
            items = [*kept, marker(dropped)]
        sizes = kept_sizes
        budget = max_bytes - _ITEM_OVERHEAD * (len(kept) + 1) - 64
    else:
        kept = items
        budget = max_bytes - _ITEM_OVERHEAD * len(items)
    cap = _share(sizes, max(budget, _MIN_SHARE * len(kept)))
    if cap is None:
        return items
    out = []
    for item, size in zip(kept, sizes, strict=True):
        content = item.get("content")
        if isinstance(content, str) and size > cap:
            out.append(dict(item, content=to_text(content, max(cap, 16))))
        else:
            out.append(item)
    if len(items) > len(kept):  # put the marker back where it was
        index = next(i for i, item in enumerate(items) if item not in kept)
        out.insert(index, items[index])
    return out


def _message_marker(count: int) -> dict[str, Any]:
    return {"role": "user", "content": f"{TRUNCATION_MARKER} {count} more messages"}


def _document_marker(count: int) -> dict[str, Any]:
    return {"content": f"{TRUNCATION_MARKER} {count} more documents"}


def llm_input(arguments: Mapping[str, Any] | Any, max_bytes: int) -> list[dict[str, Any]]:
    """A list of messages from the call's arguments (or from a value given to ``update``).

    The whole list stays within about ``max_bytes`` (see ``_bounded``).
    """
    messages = _llm_messages(arguments, max_bytes)
    if len(messages) > 1:
        messages = _bounded(messages, max_bytes, keep_newest=True, marker=_message_marker)
    return messages


def _llm_messages(arguments: Mapping[str, Any] | Any, max_bytes: int) -> list[dict[str, Any]]:
    if isinstance(arguments, str):
        return [_message(arguments, "user", max_bytes)]
    if _is_message_list(arguments):
        return [_message(m, "user", max_bytes) for m in arguments]
    if isinstance(arguments, Mapping):
        if _is_message_list(arguments.get("messages")):
            return [_message(m, "user", max_bytes) for m in arguments["messages"]]
        for name in _PROMPT_NAMES:
            if isinstance(arguments.get(name), str):
                return [_message(arguments[name], "user", max_bytes)]
        for value in arguments.values():
            if _is_message_list(value):
                return [_message(m, "user", max_bytes) for m in value]
        strings = [v for v in arguments.values() if isinstance(v, str)]
        if len(strings) == 1:
            return [_message(strings[0], "user", max_bytes)]
        return [_message(arguments_text(dict(arguments), max_bytes), "user", max_bytes)]
    return [_message(to_text(arguments, max_bytes), "user", max_bytes)]


# -- outputs ------------------------------------------------------------------------------
def normalize_output(node: SpanNode, value: Any, max_bytes: int) -> Any:
    """The wire ``output`` of ``node`` for a return value; may also fill llm metrics."""
    type_ = node.type
    if type_ == "llm":
        return llm_output(node, value, max_bytes)
    if type_ == "retriever":
        return _documents(value, max_bytes)
    return to_text(value, max_bytes)


def llm_output(node: SpanNode, value: Any, max_bytes: int) -> dict[str, Any]:
    """An assistant message from a model's answer; reads OpenAI-style ``choices``/``usage``."""
    response = value
    if not isinstance(value, (str, Mapping)) and hasattr(value, "model_dump"):
        try:
            response = value.model_dump()
        except Exception:
            response = value
    if isinstance(response, Mapping):
        _usage(node, response.get("usage"))
        if isinstance(response.get("model"), str) and not (node.attrs and "model" in node.attrs):
            node.set_attr("model", response["model"])
        choices = response.get("choices")
        if isinstance(choices, Sequence) and choices and isinstance(choices[0], Mapping):
            first = choices[0]
            message = first.get("message") or {"content": first.get("text", "")}
            if isinstance(first.get("finish_reason"), str):
                node.set_attr("finish_reason", first["finish_reason"])
            return _message(message, "assistant", max_bytes)
        if "content" in response or "role" in response:
            return _message(response, "assistant", max_bytes)
    if isinstance(response, str):
        return {"role": "assistant", "content": to_text(response, max_bytes)}
    return {"role": "assistant", "content": to_text(response, max_bytes)}


def _usage(node: SpanNode, usage: Any) -> None:
    if not isinstance(usage, Mapping):
        return
    pairs = (("prompt_tokens", "num_input_tokens"), ("input_tokens", "num_input_tokens"),
             ("completion_tokens", "num_output_tokens"), ("output_tokens", "num_output_tokens"),
             ("total_tokens", "num_total_tokens"))
    for key, metric in pairs:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            node.set_metric(metric, value)


def _documents(value: Any, max_bytes: int) -> list[dict[str, Any]]:
    items = value if isinstance(value, (list, tuple)) else [value]
    docs: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            docs.append({"content": to_text(item, max_bytes)})
            continue
        if isinstance(item, Mapping):
            content = item.get("content", item.get("page_content"))
            if content is not None:
                meta = item.get("metadata")
                doc: dict[str, Any] = {"content": to_text(content, max_bytes)}
                if isinstance(meta, Mapping):
                    doc["metadata"] = {str(k): v if isinstance(v, (str, int, float, bool))
                                       else to_text(v, 1000) for k, v in meta.items()}
                docs.append(doc)
                continue
        docs.append({"content": to_text(item, max_bytes)})
    if len(docs) > 1:
        docs = _bounded(docs, max_bytes, keep_newest=False, marker=_document_marker)
    return docs


# -- trees --------------------------------------------------------------------------------
Redactor = Callable[[dict[str, Any]], dict[str, Any]]


def _record(node: SpanNode) -> dict[str, Any]:
    metrics: dict[str, Any] = {"duration_ns": node.duration_ns}
    if node.metrics:
        metrics.update(node.metrics)
    record: dict[str, Any] = {
        "type": node.type,
        "id": node.id,
        "name": node.name,
        "input": node.input,
        "output": node.output,
        "created_at": _clock.iso_from_ns(node.created_ns),
        "user_metadata": node.metadata or {},
        "tags": node.tags or [],
        "status_code": node.status_code,
        "metrics": metrics,
    }
    if node.attrs:
        record.update(node.attrs)
    return record


_REDACT_FAILED = "<redact hook failed>"


def redact_failed(exc: BaseException | None, result: Any = None) -> None:
    """Log (once per kind of failure) that the user's redact hook failed or misbehaved.

    A failing hook is a bug in user code, not in ours: it is logged, never raised (even in
    strict mode), and the record is shipped as a skeleton without any captured data.
    """
    if exc is not None:
        log_once(f"redact:{type(exc).__name__}", logging.ERROR,
                 "galileo_sessions: the redact hook raised %s: %s; records are sent without "
                 "their captured data", type(exc).__name__, exc)
    else:
        log_once(f"redact-result:{type(result).__name__}", logging.ERROR,
                 "galileo_sessions: the redact hook returned %s instead of a dict; records are "
                 "sent without their captured data", type(result).__name__)


def _redacted(redact: Redactor, record: dict[str, Any]) -> dict[str, Any]:
    try:
        result = redact(record)
    except Exception as exc:
        redact_failed(exc)
        result = None
    else:
        if not isinstance(result, dict):
            redact_failed(None, result)
    if not isinstance(result, dict):
        # Never ship unredacted data because the hook failed: keep the skeleton only
        # (ids, type, name, timing, status); inputs, outputs and metadata are left out.
        metadata = {"redaction_failed": "true"}
        error_type = (record.get("user_metadata") or {}).get("error.type")
        if isinstance(error_type, str):
            metadata["error.type"] = error_type
        skeleton = dict(record, input=_REDACT_FAILED, output=_REDACT_FAILED,
                        user_metadata=metadata)
        if skeleton["type"] == "llm":
            skeleton["input"] = [{"role": "user", "content": _REDACT_FAILED}]
            skeleton["output"] = {"role": "assistant", "content": _REDACT_FAILED}
        elif skeleton["type"] == "retriever":
            skeleton["output"] = [{"content": _REDACT_FAILED}]
        return skeleton
    return result


def build_tree(node: SpanNode, redact: Redactor | None) -> dict[str, Any]:
    """The wire dict of ``node`` and of its ended, undelivered descendants.

    Marks each included node as delivered. The caller holds the root's lock, so a child
    ending in another thread either makes it in here or sees ``delivered`` on its parent.
    """
    return build_tree_sized(node, redact)[0]


def build_tree_sized(node: SpanNode, redact: Redactor | None) -> tuple[dict[str, Any], int]:
    """``build_tree`` plus an estimate of the memory the record holds (one pass, no re-walk)."""
    node.delivered = True
    record = _record(node)
    size = _NODE_OVERHEAD  # a memory estimate for the queue's bound, inlined: hot path
    for value in (node.input, node.output):
        if type(value) is str:
            size += len(value)
        elif value is not None:
            size += 300 * len(value) if isinstance(value, list) else 300
    if redact is not None:
        record = _redacted(redact, record)
    if node.type not in LEAF_TYPES:
        spans = []
        if node.children:
            for child in node.children:
                if child.ended and not child.delivered:
                    child_record, child_size = build_tree_sized(child, redact)
                    spans.append(child_record)
                    size += child_size
        record["spans"] = spans
    return record, size



_NODE_OVERHEAD = 1200  # measured: a small span's dicts take about 1.2 KB of Python memory
