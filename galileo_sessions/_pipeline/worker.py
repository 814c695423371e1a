"""The fire-and-forget worker: a bounded in-memory queue drained by one daemon thread.

The caller's cost is an append under a short lock; the thread wakes when a batch is full,
when ``flush`` asks, or every ``flush_interval`` seconds. Retryable failures put the batch
back at the front of the queue and back off (exponential, with jitter, honouring
``Retry-After``); a flush interrupts the back-off to try once more at once. The queue is
bounded in bytes; past the bound, ops go to the overflow hook (the disk spool, when there is
one) or are dropped, counted and logged once.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from .._internal import internal_error, log_once
from .ops import Op
from .sender import Sender
from .stats import Stats

__all__ = ["Worker"]

_MAX_BACKOFF_S = 30.0


class Worker:
    """Owns the queue and the background thread of one pipeline."""

    def __init__(self, sender: Sender, stats: Stats, *, flush_interval: float,
                 max_batch_records: int, max_queue_bytes: int,
                 overflow: Callable[[Op], bool] | None = None) -> None:
        self._sender = sender
        self._stats = stats
        self._interval = flush_interval
        self._max_records = max_batch_records
        self._max_bytes = max_queue_bytes
        self._overflow = overflow
        self._queue: deque[Op] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._queued_bytes = 0
        self._in_flight = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._backoff = 0.0

    # -- caller side ---------------------------------------------------------------------
    def submit(self, op: Op) -> None:
        size = op.size
        with self._lock:
            if self._queued_bytes + size > self._max_bytes:
                full = True
            else:
                full = False
                self._queue.append(op)
                self._queued_bytes += size
                count = len(self._queue)
        if full:
            self._spill(op)
            return
        self._stats.add(enqueued=1, pending=1, queue_bytes=size)
        if self._thread is None:
            self._start()
        if count >= self._max_records:
            self._wake.set()

    def _spill(self, op: Op) -> None:
        self._stats.add(enqueued=1, pending=1)
        if self._overflow is not None and self._overflow(op):
            self._stats.add(spooled=1, pending=-1)
            return
        self._stats.add(dropped=1, pending=-1)
        log_once("queue-full", logging.WARNING,
                 "galileo_sessions: the in-memory queue is full (%d bytes) and there is no spool "
                 "room; dropping records (counted in stats()['dropped'])", self._max_bytes)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="galileo-sessions-worker",
                                            daemon=True)
            self._thread.start()

    # -- flushing ------------------------------------------------------------------------
    def flush(self, timeout: float | None) -> bool:
        """Wake the worker and wait until the queue is empty; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._backoff = 0.0
        self._wake.set()
        with self._idle:
            while self._queue or self._in_flight:
                if self._thread is None:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
        return not self._queue and not self._in_flight

    def stop(self, timeout: float | None) -> bool:
        """Flush within ``timeout``, then end the thread. Returns True if all was sent."""
        drained = self.flush(timeout)
        with self._lock:
            self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.5 if timeout is None else max(0.0, min(timeout, 0.5)))
        return drained

    def pending_ops(self) -> list[Op]:
        """Everything not yet sent (for the spool on shutdown)."""
        with self._lock:
            return list(self._queue)

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's thread does not exist here; start clean."""
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._queue = deque()
        self._queued_bytes = 0
        self._in_flight = 0
        self._thread = None
        self._pid = os.getpid()

    # -- the thread ----------------------------------------------------------------------
    def _take(self) -> list[Op]:
        with self._lock:
            batch: list[Op] = []
            taken = 0
            while self._queue and len(batch) < self._max_records:
                op = self._queue.popleft()
                batch.append(op)
                taken += op.size
            self._queued_bytes -= taken
            self._in_flight = len(batch)
        self._stats.add(queue_bytes=-taken)
        return batch

    def _requeue(self, ops: list[Op]) -> None:
        size = sum(op.size for op in ops)
        with self._lock:
            self._queue.extendleft(reversed(ops))
            self._queued_bytes += size
            self._in_flight = 0
        self._stats.add(queue_bytes=size)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            while True:
                batch = self._take()
                if not batch:
                    break
                try:
                    remaining, error = self._sender.deliver(batch)
                except Exception as exc:  # a bug: never let it kill the thread
                    internal_error("worker.deliver", exc)
                    remaining, error = batch, None
                if remaining:
                    for op in remaining:
                        op.attempts += 1
                    self._stats.add(retried=len(remaining))
                    if error is not None:
                        self._stats.error(str(error))
                    self._requeue(remaining)
                    self._sleep_backoff(error.retry_after if error is not None else None)
                    if self._stopping:
                        break
                    continue
                self._backoff = 0.0
                with self._idle:
                    self._in_flight = 0
                    self._idle.notify_all()
            with self._idle:
                self._idle.notify_all()
                if self._stopping:
                    self._thread = None
                    return

    def _sleep_backoff(self, retry_after: float | None) -> None:
        self._backoff = min(_MAX_BACKOFF_S, max(0.1, self._backoff * 2))
        pause = retry_after if retry_after is not None else self._backoff
        pause = min(_MAX_BACKOFF_S, pause) * random.uniform(0.8, 1.2)
        with self._idle:
            self._idle.notify_all()
        self._wake.wait(pause)
        self._wake.clear()
