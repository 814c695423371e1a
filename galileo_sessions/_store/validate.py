"""Validation of whole request bodies: the envelope and each write/search route's own fields.

Why: the store takes the exact JSON bodies Galileo's HTTP API takes (galileo-wire.md sections
3-8), so the embedded exporter and the dev server refuse the same things the real API refuses.
Each function returns a cleaned copy (ids normalised, defaults filled) or raises
``IngestValidationError`` listing every problem with its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from galileo_sessions._store.checks import Loc, Problems
from galileo_sessions._store.records import (
    SPAN_TYPES,
    Rec,
    check_record,
    mixed_input,
    mixed_output,
)

__all__ = [
    "Envelope",
    "SearchQuery",
    "log_stream_body",
    "project_body",
    "search_body",
    "session_body",
    "span_update_body",
    "spans_body",
    "trace_update_body",
    "traces_body",
]

LOGGING_METHODS = ("playground", "python_client", "typescript_client", "api_direct")
_ENVELOPE_FIELDS = ("log_stream_id", "experiment_id", "metrics_testing_id", "logging_method",
                    "client_version", "reliable")
SEARCH_COLUMNS = ("external_id", "name", "id", "previous_session_id")
SORT_COLUMNS = ("created_at", "name", "external_id", "id")
OPERATORS = ("eq", "ne", "contains", "one_of", "not_in")
PROJECT_TYPES = ("gen_ai", "llm_monitor", "prompt_evaluation", "training_inference", "protect")


@dataclass
class Envelope:
    """The shared write fields (section 3). ``run_kind`` is ``log_stream`` or ``experiment``."""

    run_kind: str
    run_id: str
    metrics_testing_id: str | None = None
    logging_method: str = "api_direct"
    client_version: str | None = None
    reliable: bool = True

    def ids(self) -> dict[str, Any]:
        """The envelope ids echoed in responses."""
        out: dict[str, Any] = {f"{self.run_kind}_id": self.run_id}
        if self.metrics_testing_id is not None:
            out["metrics_testing_id"] = self.metrics_testing_id
        return out


def _body(p: Problems, body: Any) -> Mapping[str, Any]:
    obj = p.obj(Loc(), body)
    if obj is None:
        p.raise_if_any()
    assert obj is not None
    return obj


def _envelope(p: Problems, body: Mapping[str, Any], *, required: bool = True) -> Envelope:
    root = Loc()
    stream = p.uuid(root / "log_stream_id", body.get("log_stream_id"))
    experiment = p.uuid(root / "experiment_id", body.get("experiment_id"))
    given = [name for name in ("log_stream_id", "experiment_id") if body.get(name) is not None]
    if len(given) == 2 or (required and not given):
        p.add(root, "exactly one of log_stream_id or experiment_id must be given",
              "value_error")
    env = Envelope("experiment", experiment or "") if experiment else \
        Envelope("log_stream", stream or "")
    env.metrics_testing_id = p.uuid(root / "metrics_testing_id", body.get("metrics_testing_id"))
    if "logging_method" in body:
        env.logging_method = p.choice(root / "logging_method", body["logging_method"],
                                      LOGGING_METHODS) or "api_direct"
    env.client_version = p.string(root / "client_version", body.get("client_version"),
                                  nullable=True)
    if "reliable" in body:
        env.reliable = bool(p.boolean(root / "reliable", body["reliable"]))
    return env


# -- projects and log streams -------------------------------------------------------------------

def project_body(body: Any) -> dict[str, Any]:
    """ProjectCreate: ``{"name", "type"?, "create_example_templates"?}``."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, ("name", "type", "create_example_templates"))
    if "name" not in obj:
        p.missing(root / "name")
    elif p.string(root / "name", obj["name"]) == "":
        p.add(root / "name", "name must not be empty", "string_too_short")
    kind = p.choice(root / "type", obj.get("type", "gen_ai"), PROJECT_TYPES)
    if "create_example_templates" in obj:
        p.boolean(root / "create_example_templates", obj["create_example_templates"])
    p.raise_if_any()
    return {"name": obj["name"], "type": kind}


def log_stream_body(body: Any) -> dict[str, Any]:
    """LogStreamCreateRequest: ``{"name"}``."""
    p = Problems()
    obj = _body(p, body)
    p.extra(Loc(), obj, ("name",))
    if "name" not in obj:
        p.missing(Loc() / "name")
    elif p.string(Loc() / "name", obj["name"]) == "":
        p.add(Loc() / "name", "name must not be empty", "string_too_short")
    p.raise_if_any()
    return {"name": obj["name"]}


# -- sessions -----------------------------------------------------------------------------------

def session_body(body: Any) -> tuple[Envelope, dict[str, Any]]:
    """SessionCreateRequest (section 4.1)."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, (*_ENVELOPE_FIELDS, "name", "previous_session_id", "external_id",
                        "user_metadata"))
    env = _envelope(p, obj)
    fields = {
        "name": p.string(root / "name", obj.get("name"), nullable=True),
        "previous_session_id": p.uuid(root / "previous_session_id",
                                      obj.get("previous_session_id")),
        "external_id": p.string(root / "external_id", obj.get("external_id"), nullable=True),
        "user_metadata": p.str_map(root / "user_metadata", obj.get("user_metadata"),
                                   nullable=True),
    }
    p.raise_if_any()
    return env, fields


@dataclass
class SearchQuery:
    """A validated LogRecordsQueryRequest restricted to what the store can answer."""

    env: Envelope | None
    starting_token: int = 0
    limit: int = 100
    filters: list[dict[str, Any]] = field(default_factory=list)
    sort_column: str = "created_at"
    ascending: bool = False


def search_body(body: Any) -> SearchQuery:
    """LogRecordsQueryRequest (section 4.3), text and id filters on session columns."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, (*_ENVELOPE_FIELDS, "starting_token", "limit", "previous_last_row_id",
                        "filters", "filter_tree", "sort", "truncate_fields", "include_counts",
                        "include_code_metric_metadata"))
    env = _envelope(p, obj, required=False)
    query = SearchQuery(env if env.run_id else None)
    for key in ("starting_token", "limit"):
        if key in obj and (n := p.integer(root / key, obj[key], nullable=False)) is not None:
            if n < 0:
                p.add(root / key, f"{key} must be >= 0", "greater_than_equal")
            setattr(query, key, n)
    p.string(root / "previous_last_row_id", obj.get("previous_last_row_id"), nullable=True)
    for key in ("truncate_fields", "include_counts", "include_code_metric_metadata"):
        if key in obj:
            p.boolean(root / key, obj[key])
    if obj.get("filter_tree") is not None:
        p.add(root / "filter_tree", "filter_tree is not supported by the local store; "
              "use filters", "value_error")
    if obj.get("filters") is not None:
        for i, item in enumerate(p.lst(root / "filters", obj["filters"]) or ()):
            flt = _filter(p, root / "filters" / i, item)
            if flt is not None:
                query.filters.append(flt)
    if obj.get("sort") is not None and (sort := p.obj(root / "sort", obj["sort"])) is not None:
        loc = root / "sort"
        p.extra(loc, sort, ("column_id", "ascending", "sort_type"))
        if "column_id" not in sort:
            p.missing(loc / "column_id")
        else:
            query.sort_column = p.choice(loc / "column_id", sort["column_id"],
                                         SORT_COLUMNS) or "created_at"
        query.ascending = bool(p.boolean(loc / "ascending", sort.get("ascending", True)))
        p.choice(loc / "sort_type", sort.get("sort_type", "column"), ("column",))
    p.raise_if_any()
    return query


def _filter(p: Problems, loc: Loc, item: Any) -> dict[str, Any] | None:
    loc = loc.record()
    obj = p.obj(loc, item)
    if obj is None:
        return None
    kind = obj.get("type")
    if kind not in ("text", "id"):
        p.add(loc / "type", f"filter type must be text or id (the only kinds the local store "
              f"supports); got {kind!r}", "union_tag_invalid")
        return None
    p.extra(loc, obj, ("type", "column_id", "operator", "value", "case_sensitive"))
    for key in ("column_id", "value") + (("operator",) if kind == "text" else ()):
        if key not in obj:
            p.missing(loc / key)
    column = p.choice(loc / "column_id", obj["column_id"], SEARCH_COLUMNS) \
        if "column_id" in obj else None
    operator = p.choice(loc / "operator", obj.get("operator", "eq"), OPERATORS)
    case = p.boolean(loc / "case_sensitive", obj.get("case_sensitive", True))
    raw = obj.get("value")
    value: Any = None
    if "value" not in obj or operator is None:
        pass
    elif operator in ("one_of", "not_in"):
        values = p.lst(loc / "value", raw)
        value = [_filter_value(p, loc / "value" / i, kind, item)
                 for i, item in enumerate(values or ())]
    else:
        value = _filter_value(p, loc / "value", kind, raw)
    if column is None or operator is None or case is None or "value" not in obj:
        return None
    return {"column": column, "operator": operator, "value": value,
            "case_sensitive": case and kind == "text"}


def _filter_value(p: Problems, loc: Loc, kind: str, value: Any) -> str | None:
    if kind == "id":
        return p.uuid(loc, value, nullable=False)
    return p.string(loc, value)


# -- traces and spans ---------------------------------------------------------------------------

@dataclass
class TracesRequest:
    env: Envelope
    traces: list[Rec]
    session_id: str | None
    session_external_id: str | None
    is_complete: bool
    include_trace_ids: bool


def traces_body(body: Any) -> TracesRequest:
    """LogTracesIngestRequest (section 5.1)."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, (*_ENVELOPE_FIELDS, "traces", "session_id", "session_external_id",
                        "is_complete", "include_trace_ids"))
    env = _envelope(p, obj)
    traces: list[Rec] = []
    if "traces" not in obj:
        p.missing(root / "traces")
    else:
        for i, item in enumerate(p.lst(root / "traces", obj["traces"], min_items=1) or ()):
            rec = check_record(p, root / "traces" / i, item, ("trace",))
            if rec is not None:
                traces.append(rec)
    req = TracesRequest(
        env, traces,
        session_id=p.uuid(root / "session_id", obj.get("session_id")),
        session_external_id=p.string(root / "session_external_id",
                                     obj.get("session_external_id"), nullable=True),
        is_complete=p.boolean(root / "is_complete", obj.get("is_complete", True)) is not False,
        include_trace_ids=bool(p.boolean(root / "include_trace_ids",
                                         obj.get("include_trace_ids", False))),
    )
    p.raise_if_any()
    return req


@dataclass
class SpansRequest:
    env: Envelope
    spans: list[Rec]
    trace_id: str
    parent_id: str


def spans_body(body: Any) -> SpansRequest:
    """LogSpansIngestRequest (section 6.1): ``trace_id`` and ``parent_id`` are required."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, (*_ENVELOPE_FIELDS, "spans", "trace_id", "parent_id"))
    env = _envelope(p, obj)
    ids: dict[str, str] = {}
    for key in ("trace_id", "parent_id"):
        if key not in obj:
            p.missing(root / key)
        else:
            ids[key] = p.uuid(root / key, obj[key], nullable=False) or ""
    spans: list[Rec] = []
    if "spans" not in obj:
        p.missing(root / "spans")
    else:
        for i, item in enumerate(p.lst(root / "spans", obj["spans"], min_items=1) or ()):
            rec = check_record(p, root / "spans" / i, item, SPAN_TYPES)
            if rec is not None:
                spans.append(rec)
    p.raise_if_any()
    return SpansRequest(env, spans, ids["trace_id"], ids["parent_id"])


def _update_common(p: Problems, obj: Mapping[str, Any], id_key: str,
                   path_id: str) -> dict[str, Any]:
    root = Loc()
    if id_key not in obj:
        p.missing(root / id_key)
    else:
        given = p.uuid(root / id_key, obj[id_key], nullable=False)
        if given is not None and given != path_id:
            p.add(root / id_key, f"{id_key} {given} does not match the id in the path "
                  f"({path_id})", "value_error")
    changes: dict[str, Any] = {}
    if obj.get("status_code") is not None:
        changes["status_code"] = p.integer(root / "status_code", obj["status_code"])
    if obj.get("duration_ns") is not None:
        changes["duration_ns"] = p.integer(root / "duration_ns", obj["duration_ns"])
    if obj.get("tags") is not None:
        changes["tags"] = p.str_list(root / "tags", obj["tags"])
    return changes


def trace_update_body(body: Any, trace_id: str) -> tuple[Envelope, dict[str, Any]]:
    """LogTraceUpdateRequest (section 6.2). Null fields mean "leave as is"."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, (*_ENVELOPE_FIELDS, "trace_id", "input", "output", "status_code",
                        "tags", "is_complete", "duration_ns"))
    env = _envelope(p, obj)
    changes = _update_common(p, obj, "trace_id", trace_id)
    for key in ("input", "output"):
        if obj.get(key) is not None:
            changes[key] = p.string(root / key, obj[key])
    if obj.get("is_complete") is not None:
        changes["is_complete"] = p.boolean(root / "is_complete", obj["is_complete"])
    p.raise_if_any()
    return env, changes


def span_update_body(body: Any, span_id: str) -> tuple[Envelope, dict[str, Any]]:
    """LogSpanUpdateRequest (section 6.3). Null fields mean "leave as is"."""
    p = Problems()
    obj = _body(p, body)
    root = Loc()
    p.extra(root, obj, (*_ENVELOPE_FIELDS, "span_id", "input", "output", "status_code",
                        "tags", "duration_ns"))
    env = _envelope(p, obj)
    changes = _update_common(p, obj, "span_id", span_id)
    if obj.get("input") is not None:
        mixed_input(p, root / "input", obj["input"])
        changes["input"] = obj["input"]
    if obj.get("output") is not None:
        mixed_output(p, root / "output", obj["output"])
        changes["output"] = obj["output"]
    p.raise_if_any()
    return env, changes
