"""The exporter that sends request bodies to Galileo (or the dev server) over HTTP.

It adds the two things the ``Exporter`` protocol needs on top of ``GalileoClient``: turning a
project / log stream *name* into ids the way the official SDK does (galileo-wire.md section 8,
creating them when missing), and mapping each ``Route`` to its ``/v2/projects/{id}/...`` path.
Resolution is lazy and cached so that it runs on the pipeline's worker, never on the caller's
path, and at most once even when several threads ask at the same time; a failure is not cached,
so the pipeline's next attempt resolves again.
"""

from __future__ import annotations

import threading
from typing import Any, Literal
from urllib.parse import quote

from galileo_sessions._client import GalileoClient
from galileo_sessions._exporter import Route, Target
from galileo_sessions.exceptions import ApiError, ApiStatusError, ConfigError

__all__ = ["HttpExporter"]

_PROJECT_TYPE = "gen_ai"
_PAGE_LIMIT = 500
_MAX_PAGES = 1000  # a server that never stops paginating must not hang the worker


def _seg(value: str) -> str:
    """One path segment; ids are UUIDs, but nothing user-supplied goes into a path unquoted."""
    return quote(value, safe="")


class HttpExporter:
    """``Exporter`` over ``GalileoClient``. Not tied to a thread; resolution is locked."""

    kind = "http"

    def __init__(
        self,
        client: GalileoClient,
        *,
        project: str = "default",
        project_id: str | None = None,
        log_stream: str = "default",
        log_stream_id: str | None = None,
        experiment_id: str | None = None,
    ) -> None:
        if log_stream_id is not None and experiment_id is not None:
            raise ConfigError("experiment_id", "give a log stream or an experiment, not both")
        self._client = client
        self._project = project
        self._project_id = project_id
        self._log_stream = log_stream
        self._log_stream_id = log_stream_id
        self._experiment_id = experiment_id
        self._target: Target | None = None
        self._resolve_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<HttpExporter client={self._client!r} project={self._project!r}>"

    # ------------------------------------------------------------------ resolution

    def resolve_target(self) -> Target:
        """Return the cached target, resolving (and creating) project and log stream once."""
        target = self._target
        if target is not None:
            return target
        with self._resolve_lock:
            if self._target is None:
                project_id = self._project_id or self._resolve_project()
                # Keep the id even if the log stream step fails: the retry skips the lookup.
                self._project_id = project_id
                if self._experiment_id is not None:
                    self._target = Target(project_id, experiment_id=self._experiment_id)
                else:
                    stream_id = self._log_stream_id or self._resolve_log_stream(project_id)
                    self._target = Target(project_id, log_stream_id=stream_id)
            return self._target

    def _resolve_project(self) -> str:
        found = self._find_project()
        if found is not None:
            return found
        try:
            created = self._client.request(
                "POST", "/projects",
                json={"name": self._project, "type": _PROJECT_TYPE,
                      "create_example_templates": False},
            )
        except ApiStatusError as exc:
            # Another process created it between our lookup and our create.
            if exc.status_code == 409 and (again := self._find_project()) is not None:
                return again
            raise
        return _id_of(created, "POST /projects")

    def _find_project(self) -> str | None:
        listed = self._client.request(
            "GET", "/projects", params={"project_name": self._project, "type": _PROJECT_TYPE},
        )
        if isinstance(listed, dict) and isinstance(listed.get("projects"), list):
            listed = listed["projects"]
        if not isinstance(listed, list):
            raise ApiError("GET /projects: expected a list of projects", method="GET")
        matches = [p for p in listed
                   if isinstance(p, dict) and p.get("name", self._project) == self._project]
        for project in matches:
            if project.get("type", _PROJECT_TYPE) == _PROJECT_TYPE:
                return _id_of(project, "GET /projects")
        if matches:
            raise ConfigError(
                "project",
                f"project {self._project!r} exists but is not a Galileo 2.0 ({_PROJECT_TYPE}) "
                "project",
            )
        return None

    def _resolve_log_stream(self, project_id: str) -> str:
        found = self._find_log_stream(project_id)
        if found is not None:
            return found
        path = f"/projects/{_seg(project_id)}/log_streams"
        try:
            created = self._client.request("POST", path, json={"name": self._log_stream})
        except ApiStatusError as exc:
            if exc.status_code == 409 and (again := self._find_log_stream(project_id)) is not None:
                return again
            raise
        return _id_of(created, f"POST {path}")

    def _find_log_stream(self, project_id: str) -> str | None:
        path = f"/projects/{_seg(project_id)}/log_streams/paginated"
        token: Any = 0
        for _ in range(_MAX_PAGES):
            page = self._client.request(
                "GET", path,
                params={"include_counts": "false", "starting_token": token, "limit": _PAGE_LIMIT},
            )
            if not isinstance(page, dict):
                raise ApiError(f"GET {path}: expected an object", method="GET")
            for stream in page.get("log_streams") or ():
                if isinstance(stream, dict) and stream.get("name") == self._log_stream:
                    return _id_of(stream, f"GET {path}")
            next_token = page.get("next_starting_token")
            if not page.get("paginated") or next_token is None or next_token == token:
                return None
            token = next_token
        return None

    # ------------------------------------------------------------------ writes

    def send(self, route: Route, target: Target, body: dict[str, Any], *,
             idempotency_key: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """POST ``body`` to ``/v2/projects/{project_id}/{route}``; return the response body."""
        path = f"/v2/projects/{_seg(target.project_id)}/{route.value}"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        result = self._client.request("POST", path, json=body, headers=headers, timeout=timeout)
        return _as_dict(result, f"POST {path}")

    def patch(self, kind: Literal["traces", "spans"], target: Target, record_id: str,
              body: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """PATCH a trace or span update body to ``/v2/projects/{pid}/{kind}/{record_id}``."""
        path = f"/v2/projects/{_seg(target.project_id)}/{kind}/{_seg(record_id)}"
        result = self._client.request("PATCH", path, json=body, timeout=timeout)
        return _as_dict(result, f"PATCH {path}")

    def close(self) -> None:
        self._client.close()


def _as_dict(result: Any, what: str) -> dict[str, Any]:
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise ApiError(f"{what}: expected a JSON object, got {type(result).__name__}")
    return result


def _id_of(record: Any, what: str) -> str:
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return str(record["id"])
    raise ApiError(f"{what}: the response has no id")
