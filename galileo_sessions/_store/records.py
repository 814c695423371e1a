"""Validation of trace and span records (galileo-wire.md section 7), nested to any depth.

Why a module of its own: both the trace ingest and the span ingest take these records, and
the per-type rules (what ``input``/``output`` may be, which extra fields a type has, which
types may have children) are the bulk of the strictness the real API applies. A record that
passes comes back as a ``Rec``: its fields with defaults filled in, ids normalised (or
generated when absent), ``created_at`` in canonical UTC form, and its children split out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from galileo_sessions._store.checks import Loc, Problems, now_iso

__all__ = ["SPAN_TYPES", "Rec", "check_record", "mixed_input", "mixed_output"]

MESSAGE_ROLES = ("agent", "assistant", "developer", "function", "system", "tool", "user")
AGENT_TYPES = ("default", "planner", "react", "reflection", "router", "classifier",
               "supervisor", "judge")
EVENT_TYPES = ("message", "reasoning", "internal_tool_call", "web_search_call",
               "image_generation", "mcp_call", "mcp_list_tools", "mcp_approval_request")
SPAN_TYPES = ("llm", "retriever", "tool", "workflow", "agent", "control")
MAX_DEPTH = 200

_INT_METRICS = ("duration_ns", "num_input_tokens", "num_output_tokens", "num_total_tokens",
                "time_to_first_token_ns", "num_image_input_tokens", "num_audio_input_tokens",
                "num_audio_output_tokens", "num_image_output_tokens")

# Fields every trace and span has, with their defaults (None means null).
_COMMON: dict[str, Any] = {
    "type": None, "input": "", "redacted_input": None, "output": None, "redacted_output": None,
    "name": "", "created_at": None, "user_metadata": {}, "tags": [], "status_code": None,
    "metrics": {}, "external_id": None, "dataset_input": None, "dataset_output": None,
    "dataset_metadata": {}, "id": None, "session_id": None, "trace_id": None,
    "parent_id": None, "step_number": None,
}
_EXTRA: dict[str, dict[str, Any]] = {
    "trace": {},
    "llm": {"input": [], "tools": None, "events": None, "model": None, "temperature": None,
            "finish_reason": None},
    "retriever": {"output": []},
    "tool": {"tool_call_id": None},
    "workflow": {},
    "agent": {"agent_type": "default"},
    "control": {"control_id": None, "agent_name": None, "check_stage": None,
                "applies_to": None, "evaluator_name": None, "selector_path": None},
}
_HAS_CHILDREN = frozenset({"trace", "workflow", "agent", "retriever", "tool"})


@dataclass
class Rec:
    """One validated record: ``data`` holds its fields (no ``spans``), ``children`` its spans."""

    data: dict[str, Any]
    children: list[Rec] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    def count(self) -> int:
        """This record plus all its descendants."""
        return 1 + sum(child.count() for child in self.children)


# -- sub-objects (section 7.3) ------------------------------------------------------------------

def content_part(p: Problems, loc: Loc, value: Any) -> None:
    obj = p.obj(loc, value)
    if obj is None:
        return
    kind = obj.get("type")
    if kind == "text":
        p.extra(loc, obj, ("type", "text", "index", "metadata"))
        if "text" not in obj:
            p.missing(loc / "text")
        else:
            p.string(loc / "text", obj["text"])
    elif kind == "file":
        p.extra(loc, obj, ("type", "file_id"))
        p.uuid(loc / "file_id", obj.get("file_id"), nullable=False)
    elif kind == "data":
        p.extra(loc, obj, ("type", "modality", "mime_type", "base64", "url", "index", "metadata"))
        p.string(loc / "modality", obj.get("modality"))
        for key in ("mime_type", "base64", "url"):
            p.string(loc / key, obj.get(key), nullable=True)
        if (obj.get("base64") is None) == (obj.get("url") is None):
            p.add(loc, f"{loc.name} must have exactly one of base64 or url", "value_error")
    else:
        p.choice(loc / "type", kind, ("text", "file", "data"))
        return
    if "index" in obj:
        p.integer(loc / "index", obj["index"])
    if obj.get("metadata") is not None:
        p.obj(loc / "metadata", obj["metadata"])


def _text_or_parts(p: Problems, loc: Loc, value: Any, *, nullable: bool) -> None:
    if isinstance(value, str) or (nullable and value is None):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            content_part(p, loc / i, item)
        return
    p.add(loc, f"{loc.name} must be a string or a list of content parts, got "
               f"{type(value).__name__ if value is not None else 'null'}", "string_type")


def message(p: Problems, loc: Loc, value: Any) -> None:
    obj = p.obj(loc, value)
    if obj is None:
        return
    p.extra(loc, obj, ("role", "content", "tool_call_id", "tool_calls"))
    if "role" not in obj:
        p.missing(loc / "role")
    else:
        p.choice(loc / "role", obj["role"], MESSAGE_ROLES)
    calls = obj.get("tool_calls")
    if "content" not in obj and calls is None:
        p.missing(loc / "content")
    elif obj.get("content") is not None or calls is None:
        _text_or_parts(p, loc / "content", obj.get("content"), nullable=False)
    p.string(loc / "tool_call_id", obj.get("tool_call_id"), nullable=True)
    if calls is not None and (items := p.lst(loc / "tool_calls", calls)) is not None:
        for i, call in enumerate(items):
            _tool_call(p, loc / "tool_calls" / i, call)


def _tool_call(p: Problems, loc: Loc, value: Any) -> None:
    obj = p.obj(loc, value)
    if obj is None:
        return
    # "type": "function" is what OpenAI puts on tool calls; accepting it costs nothing.
    p.extra(loc, obj, ("id", "function", "type"))
    p.string(loc / "id", obj.get("id"))
    fn = p.obj(loc / "function", obj.get("function"))
    if fn is not None:
        p.extra(loc / "function", fn, ("name", "arguments"))
        p.string(loc / "function" / "name", fn.get("name"))
        p.string(loc / "function" / "arguments", fn.get("arguments"))


def document(p: Problems, loc: Loc, value: Any) -> None:
    obj = p.obj(loc, value)
    if obj is None:
        return
    p.extra(loc, obj, ("content", "metadata"))
    p.string(loc / "content", obj.get("content"))
    meta = obj.get("metadata")
    if meta is not None and (m := p.obj(loc / "metadata", meta)) is not None:
        for key, item in m.items():
            if not isinstance(item, (str, int, float, bool)):
                p.add(loc / "metadata" / key, f"{(loc / 'metadata' / key).name} must be a "
                      "string, number or bool", "value_error")


def control_result(p: Problems, loc: Loc, value: Any) -> None:
    obj = p.obj(loc, value)
    if obj is None:
        return
    p.extra(loc, obj, ("action", "matched", "confidence", "error_message"))
    p.choice(loc / "action", obj.get("action"), ("deny", "steer", "observe"))
    p.boolean(loc / "matched", obj.get("matched"))
    p.number(loc / "confidence", obj.get("confidence"))
    p.string(loc / "error_message", obj.get("error_message"), nullable=True)


def _list_of_mixed(p: Problems, loc: Loc, items: list[Any], *, documents: bool) -> None:
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and "role" in item:
            message(p, loc / i, item)
        elif isinstance(item, Mapping) and "type" in item:
            content_part(p, loc / i, item)
        elif documents and isinstance(item, Mapping) and "content" in item:
            document(p, loc / i, item)
        else:
            what = "a message, content part or document" if documents else \
                "a message or content part"
            p.add(loc / i, f"{(loc / i).name} must be {what}", "union_tag_not_found")


def mixed_input(p: Problems, loc: Loc, value: Any) -> None:
    """workflow/agent/control input: str | list[Message] | list[content part]."""
    if isinstance(value, list):
        _list_of_mixed(p, loc, value, documents=False)
    elif not isinstance(value, str):
        p.add(loc, f"{loc.name} must be a string or a list of messages or content parts, "
                   f"got {type(value).__name__ if value is not None else 'null'}", "string_type")


def mixed_output(p: Problems, loc: Loc, value: Any) -> None:
    """workflow/agent output: str | Message | list[Document | part | Message] | ControlResult."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, list):
        _list_of_mixed(p, loc, value, documents=True)
    elif isinstance(value, Mapping) and "role" in value:
        message(p, loc, value)
    elif isinstance(value, Mapping) and "action" in value:
        control_result(p, loc, value)
    else:
        p.add(loc, f"{loc.name} must be a string, a message, a list of documents or content "
                   "parts, or a control result", "union_tag_not_found")


def _io(p: Problems, loc: Loc, kind: str, key: str, value: Any) -> None:
    """Check ``input``/``output`` (and their redacted twins) for a record of ``kind``."""
    is_input = key.endswith("input")
    if kind == "trace":
        _text_or_parts(p, loc, value, nullable=not is_input)
    elif kind == "llm":
        if is_input:
            if (items := p.lst(loc, value)) is not None:
                for i, item in enumerate(items):
                    message(p, loc / i, item)
        elif value is not None:
            message(p, loc, value)
    elif kind == "retriever":
        if is_input:
            p.string(loc, value)
        elif value is not None and (items := p.lst(loc, value)) is not None:
            for i, item in enumerate(items):
                document(p, loc / i, item)
    elif kind == "tool":
        p.string(loc, value, nullable=not is_input)
    elif is_input:
        mixed_input(p, loc, value)
    elif kind == "control":
        if value is not None:
            control_result(p, loc, value)
    else:
        mixed_output(p, loc, value)


def _metrics(p: Problems, loc: Loc, value: Any) -> None:
    obj = p.obj(loc, value)
    if obj is None:
        return
    for key, item in obj.items():
        if key in _INT_METRICS:
            p.integer(loc / key, item)
        else:
            p.number(loc / key, item)


# -- records ------------------------------------------------------------------------------------

def check_record(p: Problems, loc: Loc, value: Any, allowed: tuple[str, ...],
                 depth: int = 0, *, parent_id: str | None = None,
                 ordinal: int = 0) -> Rec | None:
    """Validate one trace or span (and its children). ``None`` when it could not be read.

    A record sent without an id gets one. A nested record's generated id is derived from its
    parent's id and its position, so re-sending the same tree stores nothing twice; a
    top-level record without an id gets a random one (it cannot be recognised again).
    """
    loc = loc.record()
    obj = p.obj(loc, value)
    if obj is None:
        return None
    kind = obj.get("type")
    if "type" not in obj:
        p.add(loc / "type", f"type is required (one of {', '.join(allowed)})",
              "union_tag_not_found")
        return None
    if kind not in allowed:
        p.add(loc / "type", f"type must be one of {', '.join(allowed)}; got {kind!r}",
              "union_tag_invalid")
        return None
    if depth > MAX_DEPTH:
        p.add(loc, f"records nest deeper than {MAX_DEPTH} levels", "value_error")
        return None
    defaults = {**_COMMON, **_EXTRA[kind]}
    allowed_fields = set(defaults) | ({"spans"} if kind in _HAS_CHILDREN else set())
    p.extra(loc, obj, allowed_fields)
    data: dict[str, Any] = {k: obj.get(k, d) for k, d in defaults.items()}
    data["type"] = kind

    for key in ("input", "redacted_input", "output", "redacted_output"):
        if key in obj and not (key.startswith("redacted") and obj[key] is None):
            _io(p, loc / key, kind, key, obj[key])
    p.string(loc / "name", data["name"])
    data["created_at"] = (p.datetime(loc / "created_at", obj["created_at"])
                          if "created_at" in obj else now_iso())
    p.str_map(loc / "user_metadata", data["user_metadata"])
    p.str_list(loc / "tags", data["tags"])
    p.integer(loc / "status_code", data["status_code"])
    _metrics(p, loc / "metrics", data["metrics"])
    for key in ("external_id", "dataset_input", "dataset_output"):
        p.string(loc / key, data[key], nullable=True)
    p.str_map(loc / "dataset_metadata", data["dataset_metadata"])
    p.integer(loc / "step_number", data["step_number"])
    for key in ("session_id", "trace_id", "parent_id"):
        data[key] = p.uuid(loc / key, data[key])
    if data["id"] is not None:
        data["id"] = p.uuid(loc / "id", data["id"]) or str(uuid.uuid4())
    elif parent_id is not None:
        data["id"] = str(uuid.uuid5(uuid.UUID(parent_id), f"span:{ordinal}"))
    else:
        data["id"] = str(uuid.uuid4())
    _type_fields(p, loc, kind, data)

    rec = Rec(data)
    if "spans" in obj and kind in _HAS_CHILDREN:
        children = p.lst(loc / "spans", obj["spans"])
        for i, child in enumerate(children or ()):
            sub = check_record(p, loc / "spans" / i, child, SPAN_TYPES, depth + 1,
                               parent_id=data["id"], ordinal=i)
            if sub is not None:
                rec.children.append(sub)
    return rec


def _type_fields(p: Problems, loc: Loc, kind: str, data: dict[str, Any]) -> None:
    if kind == "llm":
        for key in ("model", "finish_reason"):
            p.string(loc / key, data[key], nullable=True)
        data["temperature"] = p.number(loc / "temperature", data["temperature"])
        if data["tools"] is not None and (tools := p.lst(loc / "tools", data["tools"])):
            for i, tool in enumerate(tools):
                p.obj(loc / "tools" / i, tool)
        if data["events"] is not None and (events := p.lst(loc / "events", data["events"])):
            for i, event in enumerate(events):
                if (ev := p.obj(loc / "events" / i, event)) is not None:
                    p.choice(loc / "events" / i / "type", ev.get("type"), EVENT_TYPES)
    elif kind == "tool":
        p.string(loc / "tool_call_id", data["tool_call_id"], nullable=True)
    elif kind == "agent":
        p.choice(loc / "agent_type", data["agent_type"], AGENT_TYPES)
    elif kind == "control":
        p.integer(loc / "control_id", data["control_id"])
        for key in ("agent_name", "evaluator_name", "selector_path"):
            p.string(loc / key, data[key], nullable=True)
        if data["check_stage"] is not None:
            p.choice(loc / "check_stage", data["check_stage"], ("pre", "post"))
        if data["applies_to"] is not None:
            p.choice(loc / "applies_to", data["applies_to"], ("llm_call", "tool_call"))
