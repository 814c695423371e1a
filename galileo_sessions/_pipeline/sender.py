"""Turns ops into Galileo requests and sends them through an exporter.

Shared by both modes: the worker calls ``deliver`` with a batch, the reliable path calls
``send_now`` with one op. Ordering rule: a session is created before any trace that names it,
and a trace before its late spans; within one batch that means sessions, then traces grouped
per session, then late spans. Retryable failures (connection trouble, timeouts, 408, 429, 5xx)
leave the op to be tried again; anything else is final and counted as failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from .._exporter import Exporter, Route, Target
from .._internal import log_once
from .._records import SessionHandle
from .._wire import request_envelope
from ..exceptions import (
    ApiConnectionError,
    ApiStatusError,
    DeliveryError,
    IngestValidationError,
    NotFoundError,
)
from .ops import Op, SessionOp, SpansOp, TraceOp
from .stats import Stats

__all__ = ["RetryableError", "Sender", "describe", "is_retryable"]

_RETRY_STATUSES = frozenset({408, 429})


# Late spans can reach the server before their trace (another service, another process):
# a 404 on a spans ingest is retried this many times (about a minute of back-off) first.
_SPANS_NOT_FOUND_ATTEMPTS = 10


class RetryableError(Exception):
    """Wraps a failure worth retrying, with the server's ``Retry-After`` if it sent one."""

    def __init__(self, cause: BaseException, retry_after: float | None, *,
                 not_found: bool = False) -> None:
        self.cause = cause
        self.retry_after = retry_after
        self.not_found = not_found  # a late span whose trace the server does not have yet
        super().__init__(describe(cause))


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ApiStatusError):
        return exc.status_code in _RETRY_STATUSES or exc.status_code >= 500
    return isinstance(exc, ApiConnectionError)


def describe(exc: BaseException) -> str:
    """A one-line cause for logs and ``last_error`` (never holds the API key)."""
    if isinstance(exc, ApiStatusError):
        return f"HTTP {exc.status_code}: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Sender:
    """Builds request bodies from ops and sends them; counts the outcome of each op."""

    def __init__(self, exporter: Exporter, stats: Stats, *, max_batch_bytes: int) -> None:
        self.exporter = exporter
        self.stats = stats
        self._max_batch_bytes = max_batch_bytes
        self._target: Target | None = None
        self._target_lock = threading.Lock()

    # -- target --------------------------------------------------------------------------
    def target(self) -> Target:
        target = self._target
        if target is None:
            with self._target_lock:
                if self._target is None:
                    self._target = self.exporter.resolve_target()
                target = self._target
        return target

    # -- one op, now (reliable mode) ------------------------------------------------------
    def send_now(self, op: Op, timeout: float, *, wait: Any = time.sleep) -> None:
        """Send ``op`` with retries until ``timeout``; raise ``DeliveryError`` if it fails."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                self._send_one(op, reliable=True)
                self.stats.add(sent=1, pending=-1)
                return
            except RetryableError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.stats.add(failed=1, pending=-1)
                    self.stats.error(str(exc))
                    raise self._delivery_error(exc.cause) from exc.cause
                self.stats.add(retried=1)
                op.attempts += 1
                pause = exc.retry_after if exc.retry_after is not None else delay
                wait(min(pause, remaining))
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                self.stats.add(failed=1, pending=-1)
                self.stats.error(describe(exc))
                raise self._delivery_error(exc) from exc

    @staticmethod
    def _delivery_error(exc: BaseException) -> DeliveryError:
        status = exc.status_code if isinstance(exc, ApiStatusError) else None
        body = exc.body if isinstance(exc, ApiStatusError) else None
        server = str(body) if body is not None else None
        if isinstance(exc, IngestValidationError):
            status, server = 422, str(exc)
        return DeliveryError(f"record not acknowledged by the server: {describe(exc)}",
                             status_code=status, server_message=server)

    def _send_one(self, op: Op, *, reliable: bool) -> None:
        if isinstance(op, SessionOp):
            self._send_session(op, reliable)
        elif isinstance(op, TraceOp):
            self._send_traces(op.session, [op.trace], reliable)
        else:
            self._send_spans(op, reliable)

    # -- a batch (fire-and-forget) -------------------------------------------------------
    def deliver(self, batch: Sequence[Op]) -> tuple[list[Op], RetryableError | None]:
        """Send ``batch``; return the ops still to send (in order) and the retryable cause."""
        sessions = [op for op in batch if isinstance(op, SessionOp)]
        traces = [op for op in batch if isinstance(op, TraceOp)]
        spans = [op for op in batch if isinstance(op, SpansOp)]
        reliable = False  # the worker only carries fire-and-forget ops
        for index, session_op in enumerate(sessions):
            try:
                self._send_session(session_op, reliable)
                self.stats.add(sent=1, pending=-1)
            except RetryableError as exc:
                return [*sessions[index:], *traces, *spans], exc
            except Exception as exc:
                self._final_failure(session_op, exc)
        groups: dict[int, list[TraceOp]] = {}
        for trace_op in traces:
            groups.setdefault(id(trace_op.session), []).append(trace_op)
        ordered = list(groups.values())
        for index, group in enumerate(ordered):
            for start, chunk in self._chunks(group):
                try:
                    self._send_traces(chunk[0].session, [op.trace for op in chunk], reliable)
                    self.stats.add(sent=len(chunk), pending=-len(chunk))
                except RetryableError as exc:
                    later = [op for g in ordered[index + 1:] for op in g]
                    return [*group[start:], *later, *spans], exc
                except Exception as exc:
                    for op in chunk:
                        self._final_failure(op, exc)
        deferred: list[Op] = []
        waiting: RetryableError | None = None
        for index, span_op in enumerate(spans):
            try:
                self._send_spans(span_op, reliable)
                self.stats.add(sent=1, pending=-1)
            except RetryableError as exc:
                if exc.not_found:  # its trace is not there yet: don't hold up the others
                    deferred.append(span_op)
                    waiting = exc
                    continue
                return [*deferred, *spans[index:]], exc
            except Exception as exc:
                self._final_failure(span_op, exc)
        return deferred, waiting

    def _chunks(self, group: list[TraceOp]) -> list[tuple[int, list[TraceOp]]]:
        """Split ``group`` into requests under the byte cap, with each chunk's start index."""
        chunks: list[tuple[int, list[TraceOp]]] = [(0, [])]
        size = 0
        for index, op in enumerate(group):
            if chunks[-1][1] and size + op.size > self._max_batch_bytes:
                chunks.append((index, []))
                size = 0
            chunks[-1][1].append(op)
            size += op.size
        return chunks

    def _final_failure(self, op: Op, exc: BaseException) -> None:
        reason = describe(exc)
        self.stats.add(failed=1, pending=-1)
        self.stats.error(reason)
        if isinstance(op, SessionOp):
            op.handle.fail(reason)
        # Logged once per kind of failure, so a misconfiguration cannot flood the logs.
        log_once(f"final:{type(exc).__name__}:{getattr(exc, 'status_code', '')}", logging.ERROR,
                 "galileo_sessions: the server refused a %s, it will not be retried: %s",
                 _kind(op), reason)

    # -- requests ------------------------------------------------------------------------
    def _call(self, route: Route, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        try:
            target = self.target()
            payload = {**target.envelope(), **body}
            return self.exporter.send(route, target, payload, idempotency_key=key)
        except Exception as exc:
            if is_retryable(exc):
                retry_after = exc.retry_after if isinstance(exc, ApiStatusError) else None
                raise RetryableError(exc, retry_after) from exc
            raise

    def _send_session(self, op: SessionOp, reliable: bool) -> None:
        handle = op.handle
        if handle.resolved:
            return
        if handle.resume and handle.external_id:
            found = self._find_session(handle.external_id)
            if found is not None:
                handle.resolve(found)
                return
        body = dict(op.body)
        body["previous_session_id"] = handle.previous_session_id
        body.update(request_envelope(reliable))
        response = self._call(Route.SESSIONS, body, key=handle.local_id)
        session_id = response.get("id") if isinstance(response, dict) else None
        if not isinstance(session_id, str):
            raise ValueError(f"session create answered without an id: {response!r}")
        handle.resolve(session_id)

    def _find_session(self, external_id: str) -> str | None:
        body = {
            "filters": [{"type": "text", "column_id": "external_id", "operator": "eq",
                         "value": external_id, "case_sensitive": True}],
            "sort": {"column_id": "created_at", "ascending": False, "sort_type": "column"},
            "starting_token": 0, "limit": 1,
        }
        response = self._call(Route.SESSIONS_SEARCH, body)
        records = response.get("records") if isinstance(response, dict) else None
        if records and isinstance(records[0], dict) and isinstance(records[0].get("id"), str):
            return str(records[0]["id"])
        return None

    @staticmethod
    def _session_id(session: SessionHandle | None) -> str | None:
        if session is None:
            return None
        return session.wait(session.wait_timeout)

    def _send_traces(self, session: SessionHandle | None, traces: list[dict[str, Any]],
                     reliable: bool) -> None:
        body = {**request_envelope(reliable), "session_id": self._session_id(session),
                "traces": traces, "is_complete": True}
        self._call(Route.TRACES, body)

    def _send_spans(self, op: SpansOp, reliable: bool) -> None:
        body = {**request_envelope(reliable), "trace_id": op.trace_id,
                "parent_id": op.parent_id, "spans": op.spans}
        try:
            self._call(Route.SPANS, body)
        except (ApiStatusError, NotFoundError) as exc:
            missing = isinstance(exc, NotFoundError) or exc.status_code == 404
            if missing and op.attempts < _SPANS_NOT_FOUND_ATTEMPTS:
                raise RetryableError(exc, None, not_found=True) from exc
            raise


def _kind(op: Op) -> str:
    if isinstance(op, SessionOp):
        return "session"
    return "trace" if isinstance(op, TraceOp) else "span batch"
