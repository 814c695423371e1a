"""From OpenTelemetry span attributes to Galileo record fields (no OTel SDK imports).

Shared by ``galileo_sessions.otel.SessionSpanProcessor`` (spans ended in this process) and the
dev server's ``POST /otel/traces`` (spans decoded from OTLP), so both give the same records.

Understood conventions, first match wins for each field:

- type: ``galileo.span.type``; OpenInference ``openinference.span.kind`` (LLM, EMBEDDING ->
  llm; TOOL -> tool; RETRIEVER, RERANKER -> retriever; AGENT -> agent; CHAIN and others ->
  workflow); gen_ai ``gen_ai.operation.name`` (chat, text_completion, generate_content,
  embeddings -> llm; execute_tool -> tool; invoke_agent, create_agent -> agent; retrieval ->
  retriever; anything else -> workflow); ``db.operation == "search"`` with ``gen_ai.system``
  -> retriever; any other ``gen_ai.*`` / ``llm.*`` attribute -> llm with a model, else
  workflow. Nothing of the above: not an LLM concern (``None``).
- llm messages: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON, both the
  ``content`` and the newer ``parts`` forms) with ``gen_ai.system_instructions``; the older
  ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``; OpenInference
  ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.*``; else
  ``input.value`` / ``output.value``.
- model ``gen_ai.request.model`` / ``gen_ai.response.model`` / ``llm.model_name``; tokens
  ``gen_ai.usage.{input,output}_tokens`` (or ``prompt``/``completion``) and
  ``llm.token_count.{prompt,completion,total}``; temperature ``gen_ai.request.temperature``
  or ``llm.invocation_parameters``.
- tool: ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``, else ``input.value`` /
  ``output.value``; retriever documents: ``retrieval.documents.N.document.*``, the Galileo
  form ``gen_ai.output.messages = [{"content": {"documents": [...]}}]``, or ``output.value``.

Whatever cannot be read (non-JSON message strings, wrong types) is used as far as possible and
named in the ``otel.unreadable`` metadata entry; nothing here raises on bad values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._serialize import to_json_text, to_text
from ._wire import _documents, _message, llm_input

__all__ = ["Mapped", "classify", "map_span"]

_OPENINFERENCE = {"LLM": "llm", "EMBEDDING": "llm", "TOOL": "tool", "RETRIEVER": "retriever",
                  "RERANKER": "retriever", "AGENT": "agent", "CHAIN": "workflow"}
_OPERATIONS = {"chat": "llm", "text_completion": "llm", "generate_content": "llm",
               "embeddings": "llm", "execute_tool": "tool", "invoke_agent": "agent",
               "create_agent": "agent", "retrieval": "retriever"}
_GALILEO_TYPES = frozenset({"llm", "retriever", "tool", "workflow", "agent", "trace"})
#: Stamped on every span of a session (e.g. by ``GalileoSessionStamper``): says nothing of kind.
_CONTEXT_ONLY = frozenset({"gen_ai.conversation.id"})
_INDEXED = re.compile(r"^(\d+)\.(.+)$")


@dataclass
class Mapped:
    """Galileo record fields read from one span's attributes."""

    type: str
    input: Any = ""
    output: Any = None
    model: str | None = None
    temperature: float | None = None
    finish_reason: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status_code: int = 200
    session_id: str | None = None
    session_external_id: str | None = None
    notes: list[str] = field(default_factory=list)


def classify(attrs: Mapping[str, Any]) -> str | None:
    """The Galileo type of a span from its attributes, or ``None`` (not an LLM concern)."""
    value = attrs.get("galileo.span.type")
    if isinstance(value, str) and value in _GALILEO_TYPES:
        return value
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        return _OPENINFERENCE.get(kind.upper(), "workflow")
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        return _OPERATIONS.get(operation, "workflow")
    if attrs.get("db.operation") == "search" and "gen_ai.system" in attrs:
        return "retriever"
    for key in attrs:
        if key.startswith(("gen_ai.", "llm.")) and key not in _CONTEXT_ONLY:
            has_model = any(k in attrs for k in ("gen_ai.request.model", "gen_ai.response.model",
                                                 "llm.model_name"))
            return "llm" if has_model else "workflow"
    return None


# -- reading helpers ----------------------------------------------------------------------
def _json(attrs: Mapping[str, Any], key: str, notes: list[str]) -> tuple[bool, Any]:
    """``(present, value)``; a string that is not JSON is noted and returned as is."""
    if key not in attrs:
        return False, None
    raw = attrs[key]
    if isinstance(raw, str):
        try:
            return True, json.loads(raw)
        except ValueError:
            notes.append(f"{key}: not valid JSON")
            return True, raw
    if isinstance(raw, (list, tuple)):  # a sequence attribute: maybe one JSON item each
        items: list[Any] = []
        for item in raw:
            if isinstance(item, str):
                try:
                    items.append(json.loads(item))
                    continue
                except ValueError:
                    pass
            items.append(item)
        return True, items
    notes.append(f"{key}: expected a JSON string, got {type(raw).__name__}")
    return True, raw


def _int(attrs: Mapping[str, Any], keys: Iterable[str], notes: list[str]) -> int | None:
    for key in keys:
        if key not in attrs:
            continue
        value = attrs[key]
        if isinstance(value, bool):
            notes.append(f"{key}: expected an integer, got bool")
            continue
        if isinstance(value, int):
            return value
        try:
            return int(float(value))
        except (TypeError, ValueError):
            notes.append(f"{key}: expected an integer, got {type(value).__name__}")
    return None


def _str(attrs: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _indexed(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.N.rest = v`` attributes as one flat ``{rest: v}`` dict per index, in order."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        match = _INDEXED.match(key[len(prefix):])
        if match:
            groups.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [groups[i] for i in sorted(groups)]


def _sub_indexed(flat: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    return _indexed(flat, prefix)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return to_json_text(value, 1_000_000)


def _gen_ai_message(value: Any, default_role: str) -> dict[str, Any]:
    """A message in the gen_ai JSON form (``content`` or ``parts``) as a plain message dict."""
    if not isinstance(value, Mapping):
        return {"role": default_role, "content": _text_of(value)}
    role = value.get("role", default_role)
    if "parts" not in value or not isinstance(value.get("parts"), list):
        return dict(value, role=role)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    for part in value["parts"]:
        if not isinstance(part, Mapping):
            texts.append(_text_of(part))
            continue
        kind = part.get("type")
        if kind == "text" or (kind is None and "content" in part):
            texts.append(_text_of(part.get("content", "")))
        elif kind == "tool_call":
            calls.append({"id": str(part.get("id", "")), "function": {
                "name": str(part.get("name", "")),
                "arguments": _text_of(part.get("arguments", ""))}})
        elif kind == "tool_call_response":
            if part.get("id") is not None:
                extra["tool_call_id"] = str(part["id"])
            texts.append(_text_of(part.get("response", part.get("result", ""))))
        else:
            texts.append(_text_of(part))
    message: dict[str, Any] = {"role": role, "content": "".join(texts), **extra}
    if calls:
        message["tool_calls"] = calls
    if isinstance(value.get("finish_reason"), str):
        message["finish_reason"] = value["finish_reason"]
    return message


def _openinference_message(flat: Mapping[str, Any]) -> dict[str, Any]:
    role = flat.get("message.role", flat.get("role", "user"))
    content = flat.get("message.content", flat.get("content"))
    if content is None:
        parts = _sub_indexed(flat, "message.contents.")
        content = "".join(str(p.get("message_content.text", "")) for p in parts)
    message: dict[str, Any] = {"role": role if isinstance(role, str) else "user",
                               "content": content if isinstance(content, str)
                               else _text_of(content)}
    calls = []
    for call in _sub_indexed(flat, "message.tool_calls."):
        name = call.get("tool_call.function.name")
        if isinstance(name, str):
            arguments = call.get("tool_call.function.arguments", "")
            calls.append({"id": str(call.get("tool_call.id", "")),
                          "function": {"name": name, "arguments": _text_of(arguments)}})
    if calls:
        message["tool_calls"] = calls
    if isinstance(flat.get("message.tool_call_id"), str):
        message["tool_call_id"] = flat["message.tool_call_id"]
    return message


def _messages(attrs: Mapping[str, Any], notes: list[str], *, output: bool) -> Any:
    """The raw message list of a span's input or output, ``None`` when there is none."""
    role = "assistant" if output else "user"
    present, value = _json(attrs, "gen_ai.output.messages" if output
                           else "gen_ai.input.messages", notes)
    if present:
        if isinstance(value, list):
            messages = [_gen_ai_message(m, role) for m in value]
        else:
            messages = [_gen_ai_message(value, role)]
        if not output:
            has, system = _json(attrs, "gen_ai.system_instructions", notes)
            if has:
                parts = system if isinstance(system, list) else [system]
                text = "".join(str(p.get("content", "")) if isinstance(p, Mapping) else str(p)
                               for p in parts)
                messages.insert(0, {"role": "system", "content": text})
        return messages
    legacy = _indexed(attrs, "gen_ai.completion." if output else "gen_ai.prompt.")
    if legacy:
        return [{"role": m.get("role", role), "content": m.get("content", ""),
                 **({"finish_reason": m["finish_reason"]} if "finish_reason" in m else {})}
                for m in legacy]
    flat = _indexed(attrs, "llm.output_messages." if output else "llm.input_messages.")
    if flat:
        return [_openinference_message(m) for m in flat]
    return None


def _value(attrs: Mapping[str, Any], key: str, notes: list[str]) -> tuple[bool, Any]:
    """``input.value`` / ``output.value``: JSON when the mime type (or the text) says so."""
    if key not in attrs:
        return False, None
    raw = attrs[key]
    if not isinstance(raw, str):
        return True, raw
    mime = attrs.get(key.replace(".value", ".mime_type"))
    if mime == "application/json" or (mime is None and raw[:1] in ("{", "[")):
        try:
            return True, json.loads(raw)
        except ValueError:
            if mime == "application/json":
                notes.append(f"{key}: not valid JSON")
    return True, raw


def _plain(attrs: Mapping[str, Any], notes: list[str], *, output: bool,
           keys: Sequence[str], max_bytes: int) -> str:
    """Text input/output of a non-llm span."""
    for key in keys:
        if key in attrs:
            return to_text(attrs[key], max_bytes)
    key = "output.value" if output else "input.value"
    if key in attrs:
        return to_text(attrs[key], max_bytes)
    messages = _messages(attrs, notes, output=output)
    if messages:
        if len(messages) == 1:
            content = messages[0].get("content", "") if isinstance(messages[0], Mapping) \
                else messages[0]
            return to_text(content, max_bytes)
        return to_text(messages, max_bytes)
    return ""


def _llm_output(attrs: Mapping[str, Any], notes: list[str], mapped: Mapped,
                max_bytes: int) -> dict[str, Any]:
    messages = _messages(attrs, notes, output=True)
    if messages:
        first = messages[0]
        if isinstance(first, Mapping) and isinstance(first.get("finish_reason"), str) \
                and mapped.finish_reason is None:
            mapped.finish_reason = first["finish_reason"]
        return _message(first, "assistant", max_bytes)
    present, value = _value(attrs, "output.value", notes)
    if present:
        if isinstance(value, Mapping):
            choices = value.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
                first = choices[0]
                message = first.get("message") or {"content": first.get("text", "")}
                return _message(message, "assistant", max_bytes)
            if "content" in value or "role" in value:
                return _message(value, "assistant", max_bytes)
        return {"role": "assistant", "content": to_text(value, max_bytes)}
    return {"role": "assistant", "content": ""}


def _llm_input(attrs: Mapping[str, Any], notes: list[str], max_bytes: int) -> Any:
    messages = _messages(attrs, notes, output=False)
    if messages:
        return llm_input(messages, max_bytes)
    present, value = _value(attrs, "input.value", notes)
    if present:
        return llm_input(value if isinstance(value, (str, Mapping, list)) else str(value),
                         max_bytes)
    return []


def _retrieved(attrs: Mapping[str, Any], notes: list[str], max_bytes: int) -> Any:
    docs = _indexed(attrs, "retrieval.documents.")
    if docs:
        out = []
        for doc in docs:
            item: dict[str, Any] = {"content": doc.get("document.content", "")}
            meta: dict[str, Any] = {}
            raw_meta = doc.get("document.metadata")
            if isinstance(raw_meta, str):
                try:
                    loaded = json.loads(raw_meta)
                    if isinstance(loaded, Mapping):
                        meta.update(loaded)
                except ValueError:
                    notes.append("retrieval.documents.*.document.metadata: not valid JSON")
            for key in ("id", "score"):
                if f"document.{key}" in doc:
                    meta[key] = doc[f"document.{key}"]
            if meta:
                item["metadata"] = meta
            out.append(item)
        return _documents(out, max_bytes)
    messages = _messages(attrs, notes, output=True)
    if messages:
        first = messages[0]
        content = first.get("content") if isinstance(first, Mapping) else None
        if isinstance(content, Mapping) and isinstance(content.get("documents"), list):
            return _documents(content["documents"], max_bytes)
        return _documents([m.get("content", "") if isinstance(m, Mapping) else m
                           for m in messages], max_bytes)
    present, value = _value(attrs, "output.value", notes)
    if present:
        if isinstance(value, Mapping) and isinstance(value.get("documents"), list):
            value = value["documents"]
        return _documents(value, max_bytes)
    return []


def map_span(attrs: Mapping[str, Any], *, type_: str | None = None, error: bool = False,
             status_message: str | None = None,
             events: Iterable[tuple[str, Mapping[str, Any]]] = (),
             max_bytes: int = 100_000) -> Mapped:
    """Everything ``attrs`` say about the record of one span; never raises on bad values."""
    kind = type_ or classify(attrs) or "workflow"
    mapped = Mapped(kind)
    notes = mapped.notes
    try:
        _fill(mapped, attrs, notes, max_bytes)
    except Exception as exc:  # a bug here must not lose the span
        notes.append(f"mapping failed: {type(exc).__name__}")
    if error:
        mapped.status_code = 500
        for name, event_attrs in events:
            if name == "exception":
                etype = event_attrs.get("exception.type")
                emsg = event_attrs.get("exception.message")
                if isinstance(etype, str):
                    mapped.metadata["error.type"] = etype.rsplit(".", 1)[-1]
                if isinstance(emsg, str):
                    mapped.metadata["error.message"] = to_text(emsg, 2000)
                break
        if status_message and "error.message" not in mapped.metadata:
            mapped.metadata["error.message"] = to_text(status_message, 2000)
    code = attrs.get("galileo.status_code")
    if isinstance(code, int) and not isinstance(code, bool):
        mapped.status_code = code
    if notes:
        mapped.metadata["otel.unreadable"] = "; ".join(notes)[:2000]
    return mapped


def _fill(mapped: Mapped, attrs: Mapping[str, Any], notes: list[str], max_bytes: int) -> None:
    kind = mapped.type
    if kind == "llm":
        mapped.input = _llm_input(attrs, notes, max_bytes)
        mapped.output = _llm_output(attrs, notes, mapped, max_bytes)
        mapped.model = _str(attrs, "gen_ai.request.model", "gen_ai.response.model",
                            "llm.model_name")
        _llm_numbers(mapped, attrs, notes)
    elif kind == "tool":
        mapped.input = _plain(attrs, notes, output=False, keys=("gen_ai.tool.call.arguments",),
                              max_bytes=max_bytes)
        mapped.output = _plain(attrs, notes, output=True, keys=("gen_ai.tool.call.result",),
                               max_bytes=max_bytes)
    elif kind == "retriever":
        mapped.input = _plain(attrs, notes, output=False, keys=("db.query.text",),
                              max_bytes=max_bytes)
        mapped.output = _retrieved(attrs, notes, max_bytes)
    else:
        mapped.input = _plain(attrs, notes, output=False, keys=(), max_bytes=max_bytes)
        mapped.output = _plain(attrs, notes, output=True, keys=(), max_bytes=max_bytes)
    mapped.session_id = _str(attrs, "galileo.session.id")
    mapped.session_external_id = _str(attrs, "session.id", "galileo.session.external_id")
    present, meta = _json(attrs, "metadata", notes)
    if present and isinstance(meta, Mapping):
        for key, value in meta.items():
            mapped.metadata[str(key)] = value if isinstance(value, str) else _text_of(value)
    tags = attrs.get("tag.tags")
    if isinstance(tags, (list, tuple)):
        mapped.tags = [str(t) for t in tags]


def _llm_numbers(mapped: Mapped, attrs: Mapping[str, Any], notes: list[str]) -> None:
    tokens_in = _int(attrs, ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                             "llm.token_count.prompt"), notes)
    tokens_out = _int(attrs, ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                              "llm.token_count.completion"), notes)
    total = _int(attrs, ("gen_ai.usage.total_tokens", "llm.token_count.total"), notes)
    if tokens_in is not None:
        mapped.metrics["num_input_tokens"] = tokens_in
    if tokens_out is not None:
        mapped.metrics["num_output_tokens"] = tokens_out
    if total is None and tokens_in is not None and tokens_out is not None:
        total = tokens_in + tokens_out
    if total is not None:
        mapped.metrics["num_total_tokens"] = total
    temperature = attrs.get("gen_ai.request.temperature")
    if temperature is None:
        present, params = _json(attrs, "llm.invocation_parameters", notes)
        if present and isinstance(params, Mapping):
            temperature = params.get("temperature")
    if temperature is not None:
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
            mapped.temperature = float(temperature)
        else:
            notes.append(f"temperature: expected a number, got {type(temperature).__name__}")
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, (list, tuple)) and reasons and isinstance(reasons[0], str):
        mapped.finish_reason = reasons[0]
    elif isinstance(reasons, str):
        mapped.finish_reason = reasons


def apply(mapped: Mapped, node: Any) -> None:
    """Copy ``mapped`` onto a ``SpanNode`` (the record fields ``build_tree`` reads)."""
    node.input = mapped.input
    node.output = mapped.output
    node.output_set = True
    if mapped.model is not None:
        node.set_attr("model", mapped.model)
    if mapped.temperature is not None:
        node.set_attr("temperature", mapped.temperature)
    if mapped.finish_reason is not None:
        node.set_attr("finish_reason", mapped.finish_reason)
    for metric, count in mapped.metrics.items():
        node.set_metric(metric, count)
    for key, text in mapped.metadata.items():
        node.set_metadata(key, text)
    if mapped.tags:
        node.tags = [*(node.tags or ()), *mapped.tags]
    node.status_code = mapped.status_code
