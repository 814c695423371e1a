"""In-memory records: the span tree of a trace, and session handles. No I/O here.

A ``SpanNode`` is one trace or span while it runs. The root node of a tree is the trace; it
owns a small lock that guards the one racy decision in the tree: whether a child that ends in
another thread still rides along with its trace or, because the trace was already handed to
the pipeline, is delivered on its own as a late span (never dropped, never misattached).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from . import _ids

__all__ = ["SessionHandle", "SpanNode"]


class SpanNode:
    """A trace (``type == "trace"``) or span being recorded."""

    __slots__ = (
        "attrs", "children", "created_ns", "delivered", "duration_ns", "ended", "id", "implicit",
        "input", "lock", "metadata", "metrics", "name", "otel", "output", "output_set", "parent",
        "reliable",
        "root", "session", "start_ns", "status_code", "tags", "type",
    )

    def __init__(self, type_: str, name: str, parent: SpanNode | None,
                 created_ns: int, start_ns: int) -> None:
        self.id = _ids.new_id()
        self.type = type_
        self.name = name
        self.parent = parent
        self.children: list[SpanNode] | None = None
        self.input: Any = ""
        self.output: Any = None
        self.output_set = False
        self.created_ns = created_ns
        self.start_ns = start_ns
        self.duration_ns: int | None = None
        self.status_code: int | None = None
        self.metadata: dict[str, str] | None = None
        self.tags: list[str] | None = None
        self.attrs: dict[str, Any] | None = None
        self.metrics: dict[str, Any] | None = None
        self.ended = False
        self.delivered = False
        self.implicit = False
        self.otel: Any = None  # (OTel span, context token) while the OTel bridge mirrors it
        if parent is None:
            self.root = self
            self.lock: threading.Lock | None = threading.Lock()
            self.session: SessionHandle | None = None
            self.reliable = False
        else:
            self.root = parent.root
            self.lock = None
            self.session = None
            self.reliable = False
            siblings = parent.children
            if siblings is None:
                parent.children = [self]
            else:
                siblings.append(self)

    def set_metadata(self, key: str, value: str) -> None:
        if self.metadata is None:
            self.metadata = {key: value}
        else:
            self.metadata[key] = value

    def set_metric(self, key: str, value: Any) -> None:
        if self.metrics is None:
            self.metrics = {key: value}
        else:
            self.metrics[key] = value

    def set_attr(self, key: str, value: Any) -> None:
        if self.attrs is None:
            self.attrs = {key: value}
        else:
            self.attrs[key] = value

    def __repr__(self) -> str:
        return f"<SpanNode {self.type} {self.name!r} id={self.id}>"


class SessionHandle:
    """A session as the user sees it (``with gs.session() as s``).

    ``local_id`` is minted on the client so records can refer to the session before the
    server has answered; ``id`` is the server's id, which in fire-and-forget mode arrives in
    the background (reading it waits, at most ``wait_timeout`` seconds).
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_error",
        "_event",
        "_id",
        "chain_key",
        "external_id",
        "local_id",
        "metadata",
        "name",
        "previous",
        "previous_session_id_explicit",
        "reliable",
        "resume",
        "wait_timeout",
    )

    def __init__(self, *, name: str | None, external_id: str | None,
                 metadata: dict[str, str] | None, previous: SessionHandle | None,
                 previous_session_id: str | None, reliable: bool, resume: bool,
                 chain_key: str | None, wait_timeout: float) -> None:
        self.local_id = _ids.new_id()
        self.name = name
        self.external_id = external_id
        self.metadata = metadata or {}
        self.previous = previous
        self.previous_session_id_explicit = previous_session_id
        self.reliable = reliable
        self.resume = resume
        self.chain_key = chain_key
        self.wait_timeout = wait_timeout
        self._id: str | None = None
        self._error: str | None = None
        self._event = threading.Event()
        self._callbacks: list[Callable[[SessionHandle], None]] | None = None

    @classmethod
    def known(cls, session_id: str, *, name: str | None = None,
              external_id: str | None = None) -> SessionHandle:
        """A handle for a session the server already has (e.g. read from a ChainStore)."""
        handle = cls(name=name, external_id=external_id, metadata=None, previous=None,
                     previous_session_id=None, reliable=False, resume=False, chain_key=None,
                     wait_timeout=0.0)
        handle.resolve(session_id)
        return handle

    # -- resolution, driven by the pipeline ---------------------------------------------
    def resolve(self, session_id: str) -> None:
        self._id = session_id
        self._event.set()
        self._run_callbacks()

    def fail(self, reason: str) -> None:
        self._error = reason
        self._event.set()
        self._run_callbacks()

    def on_resolve(self, callback: Callable[[SessionHandle], None]) -> None:
        """Call ``callback(self)`` once the id is known or creation failed (now if it is)."""
        if self._event.is_set():
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)
        if self._event.is_set() and callback in self._callbacks:  # resolved meanwhile
            self._callbacks.remove(callback)
            callback(self)

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            try:
                callback(self)
            except Exception as exc:
                from ._internal import internal_error

                internal_error("session resolve callback", exc)

    @property
    def resolved(self) -> bool:
        return self._event.is_set()

    @property
    def error(self) -> str | None:
        """Why the session could not be created, once that is final."""
        return self._error

    def wait(self, timeout: float | None) -> str | None:
        """The server id, waiting up to ``timeout`` seconds; ``None`` if unknown by then."""
        if not self._event.is_set():
            self._event.wait(timeout)
        return self._id

    @property
    def id(self) -> str | None:
        """The server's session id (waits for the background creation, bounded)."""
        return self.wait(self.wait_timeout)

    @property
    def previous_session_id(self) -> str | None:
        """The server id of the session this one links to, if any."""
        if self.previous_session_id_explicit is not None:
            return self.previous_session_id_explicit
        if self.previous is not None:
            return self.previous.wait(self.wait_timeout)
        return None

    def __repr__(self) -> str:
        sid = self._id or ("<failed>" if self._error else "<pending>")
        return (f"SessionHandle(id={sid}, name={self.name!r}, external_id={self.external_id!r}, "
                f"linked={self.previous is not None or bool(self.previous_session_id_explicit)})")
