"""The pipeline facade: one per ``configure()``; routes each op by its delivery mode.

Fire-and-forget ops go to the worker; reliable ops are sent on the caller's thread (async
callers run that in a thread so the event loop never blocks). ``flush`` and ``shutdown``
are bounded by their timeouts and report what really happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from .._exporter import Exporter
from .._internal import internal_error, log_once
from ..exceptions import DeliveryError
from .codec import encode
from .ops import Op, SessionOp
from .sender import Sender
from .spool import Spool
from .stats import FlushResult, Stats
from .worker import Worker

__all__ = ["Pipeline"]


class Pipeline:
    """Delivery for one configuration: a sender, a worker, counters."""

    def __init__(self, exporter: Exporter, *, reliable_timeout: float, flush_interval: float,
                 max_batch_records: int, max_batch_bytes: int, max_queue_bytes: int,
                 spool: Spool | None = None, inline: bool = False) -> None:
        self.exporter = exporter
        self.stats = Stats()
        self.spool = spool
        self.sender = Sender(exporter, self.stats, max_batch_bytes=max_batch_bytes)
        self.worker = Worker(self.sender, self.stats, flush_interval=flush_interval,
                             max_batch_records=max_batch_records,
                             max_queue_bytes=max_queue_bytes, spool=spool)
        if spool is not None and not inline and spool.pending_count():
            self.worker.start()  # replay what a previous run left, in the background
        self.reliable_timeout = reliable_timeout
        self.inline = inline  # the test kit: deliver fire-and-forget ops at once, in order
        # The hot path's entry for fire-and-forget ops: the worker's queue, one call deep.
        self.enqueue: Callable[[Op], None] = (
            self._deliver_inline if inline else self.worker.submit)
        self._closed = False
        self._close_lock = threading.Lock()

    def submit(self, op: Op, *, reliable: bool) -> None:
        """Hand ``op`` over. Reliable: send now, raising ``DeliveryError`` on failure."""
        if reliable:
            self.stats.add(enqueued=1, pending=1)
            path = self._write_ahead(op)
            try:
                self.sender.send_now(op, self.reliable_timeout)  # DeliveryError: the file stays
            except DeliveryError as exc:
                if isinstance(op, SessionOp):
                    # Final for this process: later sessions of the chain must not wait for
                    # an id that will never come (they would block for reliable_timeout).
                    op.handle.fail(str(exc))
                raise
            if path is not None and self.spool is not None:
                self.spool.remove(path)
        else:
            self.enqueue(op)

    def _deliver_inline(self, op: Op) -> None:
        self.stats.add(enqueued=1, pending=1)
        remaining, error = self.sender.deliver([op])
        if remaining:
            self.stats.add(failed=len(remaining), pending=-len(remaining))
            self.stats.error(str(error))

    def _write_ahead(self, op: Op) -> Path | None:
        """Reliable mode: the record is on disk before it is sent, so a crash loses nothing."""
        if self.spool is None:
            return None
        try:
            path = self.spool.write([encode(op)], overflow=False)
        except Exception as exc:
            log_once(f"spool-write-ahead:{type(exc).__name__}", logging.ERROR,
                     "galileo_sessions: cannot write the spool %s (%s); reliable records are "
                     "sent without a crash-safe copy", self.spool.directory, exc)
            return None
        if path is None:
            log_once("spool-full-reliable", logging.ERROR,
                     "galileo_sessions: the spool %s is full; reliable records are sent without "
                     "a crash-safe copy", self.spool.directory)
        return path

    async def asubmit(self, op: Op, *, reliable: bool) -> None:
        if reliable:
            import asyncio

            await asyncio.to_thread(self.submit, op, reliable=True)
        else:
            self.submit(op, reliable=False)

    def flush(self, timeout: float | None = None) -> FlushResult:
        try:
            self.worker.flush(timeout)
        except Exception as exc:
            internal_error("flush", exc)
        return self.stats.flush_result()

    def shutdown(self, timeout: float) -> FlushResult:
        """Flush within ``timeout``, stop the worker, close the exporter. Idempotent."""
        with self._close_lock:
            if self._closed:
                return self.stats.flush_result()
            self._closed = True
        try:
            self.worker.stop(timeout)
        except Exception as exc:
            internal_error("shutdown", exc)
        result = self.stats.flush_result()
        try:
            self.exporter.close()
        except Exception as exc:
            internal_error("exporter.close", exc)
        return result

    def reset_after_fork(self) -> None:
        self.stats = Stats()
        self.sender.stats = self.stats
        self.worker.reset_after_fork(self.stats)
