"""The fire-and-forget worker: a bounded in-memory queue drained by one daemon thread.

The caller's cost is an append under a short lock; the thread wakes when a batch is full,
when ``flush`` asks, or every ``flush_interval`` seconds. A retryable failure puts the batch
back at the front of the queue and backs off (exponential with jitter, honouring
``Retry-After``): while backing off the worker sends nothing, so a dead server costs the
callers nothing (a circuit breaker). ``flush`` interrupts the back-off for one more try.

The queue is bounded in bytes. Past the bound, ops wait in a short overflow list that the
worker writes to the disk spool in one file per batch (so the caller never does disk I/O);
at shutdown, records still unsent are spooled the same way. Only when the spool is full too
are records dropped, counted and logged once. Spooled ops stay ``pending`` until the server
has them: this process replays its own spool files once the server answers again, and the
next process replays the files of processes that died.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from pathlib import Path

from .._internal import internal_error, log_once
from .._records import SessionHandle
from .codec import decode, encode
from .ops import Op
from .sender import Sender
from .spool import Spool
from .stats import Stats

__all__ = ["Worker"]

_MAX_BACKOFF_S = 30.0
_REPLAY_EVERY_S = 5.0


class Worker:
    """Owns the queue and the background thread of one pipeline."""

    def __init__(self, sender: Sender, stats: Stats, *, flush_interval: float,
                 max_batch_records: int, max_queue_bytes: int,
                 spool: Spool | None = None) -> None:
        self._sender = sender
        self.stats = stats
        self._interval = flush_interval
        self._max_records = max_batch_records
        self._max_bytes = max_queue_bytes
        self._spool = spool
        self._init_state()

    def _init_state(self) -> None:
        self._queue: deque[Op] = deque()
        self._overflow: list[Op] = []
        self._overflow_bytes = 0
        self._file_refs: dict[Path, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._queued_bytes = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._backoff = 0.0
        self._healthy = True
        self._last_replay = 0.0
        self._flush_requested = 0
        self._flush_done = 0
        self._inflight: list[Op] = []  # the batch the thread is sending (spooled at stop)

    # -- caller side ---------------------------------------------------------------------
    def submit(self, op: Op) -> None:
        size = op.size
        dropped = False
        spill: list[Op] = []
        spill_bytes = 0
        with self._lock:
            if self._queued_bytes + size <= self._max_bytes:
                self._queue.append(op)
                self._queued_bytes += size
                wake = len(self._queue) >= self._max_records and self._healthy
            elif self._spool is not None:
                if self._overflow_bytes + size > self._max_bytes:
                    # A burst outran the worker (busy connecting, or backing off): write the
                    # full overflow to disk here rather than drop records the disk can hold.
                    spill, self._overflow = self._overflow, []
                    spill_bytes, self._overflow_bytes = self._overflow_bytes, 0
                self._overflow.append(op)  # the worker moves it to disk
                self._overflow_bytes += size
                wake = len(self._overflow) == 1
            else:
                dropped, wake = True, False
        if dropped:
            self.stats.add(enqueued=1, dropped=1)
            self._log_drop()
            return
        self.stats.submitted(size - spill_bytes)
        if spill:
            self._spill(spill)
        if self._thread is None:
            self._start()
        if wake and not self._wake.is_set():  # Event.set costs microseconds; skip repeats
            self._wake.set()

    def _log_drop(self) -> None:
        log_once("queue-full", logging.WARNING,
                 "galileo_sessions: the in-memory queue is full (%d bytes) and the disk spool "
                 "cannot take more; dropping records (counted in stats()['dropped'])",
                 self._max_bytes)

    def _spill(self, ops: list[Op], *, in_flight: bool = False) -> None:
        """Write ``ops`` to the spool as one file; drop (and count) them if that fails.

        ``in_flight`` ops are still being sent by the worker thread, which counts their
        outcome itself: a failed write here must not count them as dropped as well.
        """
        ops = [op for op in ops if op.spool_path is None]
        if not ops:
            return
        path = None
        if self._spool is not None:
            try:
                path = self._spool.write([encode(op) for op in ops], overflow=True)
            except Exception as exc:
                log_once(f"spool-write:{type(exc).__name__}", logging.ERROR,
                         "galileo_sessions: cannot write the spool %s: %s",
                         self._spool.directory, exc)
        if path is None:
            if not in_flight:
                self.stats.add(dropped=len(ops), pending=-len(ops))
                self._log_drop()
            return
        for op in ops:
            op.spool_path = path
        with self._lock:
            self._file_refs[path] = self._file_refs.get(path, 0) + len(ops)
        self.stats.add(spooled=len(ops))  # still pending: on disk until the server takes it

    def _spill_overflow(self) -> None:
        with self._lock:
            ops, self._overflow = self._overflow, []
            size, self._overflow_bytes = self._overflow_bytes, 0
        if ops:
            self.stats.add(queue_bytes=-size)
            self._spill(ops)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name="galileo-sessions-worker",
                                            daemon=True)
            self._thread.start()

    def start(self) -> None:
        """Start the thread now (e.g. to replay a spool left by a previous run)."""
        self._start()

    # -- flushing ------------------------------------------------------------------------
    def flush(self, timeout: float | None) -> bool:
        """Ask for a full drain (spooled records included); wait for it. False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._thread is None:
            if not self._queue and (self._spool is None or not self._spool.pending_count()):
                return True
            self._start()
        with self._changed:
            self._flush_requested += 1
            wanted = self._flush_requested
        self._backoff = 0.0
        self._wake.set()
        with self._changed:
            while self._flush_done < wanted:
                if self._thread is None:
                    return not self._queue
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True

    def stop(self, timeout: float | None) -> bool:
        """Flush, end the thread and spool what is left, all within ``timeout``.

        The flush gets the timeout less a small reserve for joining the thread and writing
        the spool (local disk), so the whole call stays within the bound.
        """
        reserve = 0.0 if timeout is None else min(0.25, timeout / 4)
        drained = self.flush(None if timeout is None else timeout - reserve)
        with self._lock:
            self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.5 if timeout is None else max(0.01, reserve / 2))
        self._spill_overflow()
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
        if left:
            self.stats.add(queue_bytes=-sum(op.size for op in left))
            self._spill(left)  # the next start replays them
        if thread is not None and thread.is_alive() and self._inflight:
            # Out of time with a batch still in flight: spool it too, or a slow server at
            # exit would lose it with the daemon thread (ids make a re-send harmless).
            self._spill(list(self._inflight), in_flight=True)
            left = left or self._inflight
        return drained and not left

    def reset_after_fork(self, stats: Stats) -> None:
        """In a forked child: the parent's thread does not exist here; start clean."""
        self.stats = stats
        self._init_state()

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
        if taken:
            self.stats.add(queue_bytes=-taken)
        return batch

    def _requeue(self, ops: list[Op]) -> None:
        size = sum(op.size for op in ops)
        excess: list[Op] = []
        with self._lock:
            self._queue.extendleft(reversed(ops))
            self._queued_bytes += size
            # Callers refilled the queue while this batch was out: keep the byte bound by
            # moving the newest ops to disk (older ones, e.g. their sessions, stay in front).
            if self._spool is not None and self._queued_bytes > self._max_bytes:
                kept: list[Op] = []
                while self._queue and self._queued_bytes > self._max_bytes:
                    op = self._queue.pop()
                    if op.spool_path is not None or not self._queue:
                        kept.append(op)  # already on disk (or the oldest): stays queued
                        continue
                    self._queued_bytes -= op.size
                    size -= op.size
                    excess.append(op)
                self._queue.extend(reversed(kept))
        self.stats.add(queue_bytes=size)
        if excess:
            excess.reverse()
            self._spill(excess)

    def _replay(self) -> int:
        """Queue spooled ops: dead processes' files, and our own overflow when healthy.

        Returns how many ops it queued.
        """
        spool = self._spool
        if spool is None:
            return 0
        queued_now = 0
        self._last_replay = time.monotonic()
        seen: dict[str, SessionHandle] = {}
        with self._lock:
            queued = {op.spool_path for op in self._queue if op.spool_path is not None}
        try:
            for path, records, foreign in spool.claim(include_own_overflow=self._healthy):
                if path in queued:
                    continue
                ops: list[Op] | None = None
                if records is not None:
                    try:
                        ops = [decode(record, seen) for record in records]
                    except Exception as exc:
                        log_once("spool-decode", logging.WARNING,
                                 "galileo_sessions: skipping a spool file %s: %s", path, exc)
                if ops is None:
                    log_once("spool-corrupt", logging.WARNING,
                             "galileo_sessions: skipping an unreadable spool file %s (set "
                             "aside as *.corrupt)", path)
                    spool.quarantine(path)
                    with self._lock:
                        lost = self._file_refs.pop(path, 0)
                    self.stats.add(failed=max(lost, 1), pending=-lost)
                    continue
                if foreign or path.name not in spool.written:
                    # From a process that died, or from an earlier pipeline of this process
                    # (before a configure()): new work for this one.
                    self.stats.add(enqueued=len(ops), pending=len(ops))
                size = sum(op.size for op in ops)
                with self._lock:
                    for op in ops:
                        op.spool_path = path
                    self._file_refs[path] = len(ops)
                    self._queue.extend(ops)
                    self._queued_bytes += size
                    roomy = self._queued_bytes < self._max_bytes // 2
                self.stats.add(queue_bytes=size)
                queued_now += len(ops)
                if not roomy:
                    return queued_now  # the rest stays on disk until there is room
        except Exception as exc:
            internal_error("spool replay", exc)
        return queued_now

    def _forget(self, done: list[Op]) -> None:
        """Ops that are finished (sent or finally failed): remove spool files none still need."""
        spool = self._spool
        if spool is None:
            return
        empty: list[Path] = []
        with self._lock:
            for op in done:
                path = op.spool_path
                if path is None:
                    continue
                op.spool_path = None
                left = self._file_refs.get(path, 1) - 1
                if left <= 0:
                    self._file_refs.pop(path, None)
                    empty.append(path)
                else:
                    self._file_refs[path] = left
        for path in empty:
            spool.remove(path)

    def _run(self) -> None:
        try:
            self._replay()
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                with self._lock:
                    requested = self._flush_requested
                    stopping = self._stopping
                if self._healthy and (requested > self._flush_done or
                                      time.monotonic() - self._last_replay > _REPLAY_EVERY_S):
                    self._replay()
                drained = self._drain()
                # A flush waits for spooled overflow too: replay refills the queue only up to
                # half its bound, so keep replaying and draining until the spool has no more
                # of this process's records (or sending fails again).
                while drained and requested > self._flush_done and self._healthy \
                        and not stopping and self._replay():
                    drained = self._drain()
                with self._changed:
                    if drained:
                        self._flush_done = max(self._flush_done, requested)
                    self._changed.notify_all()
                if stopping:
                    break
                if not drained:
                    self._spill_overflow()
                    self._sleep_backoff()
        except Exception as exc:  # pragma: no cover - last line of defence
            internal_error("worker thread", exc)
        finally:
            with self._changed:
                self._thread = None
                self._changed.notify_all()

    def _drain(self) -> bool:
        """Send until the queue is empty (True) or a retryable failure stops us (False)."""
        while True:
            self._spill_overflow()
            batch = self._take()
            if not batch:
                return True
            self._inflight = batch
            try:
                remaining, error = self._sender.deliver(batch)
            except Exception as exc:  # a bug: never let it kill the thread
                internal_error("worker.deliver", exc)
                remaining, error = batch, None
            if len(remaining) < len(batch):
                kept = {id(op) for op in remaining}
                self._forget([op for op in batch if id(op) not in kept])
            if remaining:
                if len(remaining) < len(batch):
                    self._backoff = 0.0  # progress: a flaky server is not a dead one
                self._healthy = False
                for op in remaining:
                    op.attempts += 1
                self.stats.add(retried=len(remaining))
                if error is not None:
                    self.stats.error(str(error))
                self._requeue(remaining)
                self._inflight = []
                self._retry_after = error.retry_after if error is not None else None
                return False
            self._inflight = []
            if not self._healthy:
                self._healthy = True
                self._backoff = 0.0

    _retry_after: float | None = None

    def _sleep_backoff(self) -> None:
        self._backoff = min(_MAX_BACKOFF_S, max(0.1, self._backoff * 2))
        pause = self._retry_after if self._retry_after is not None else self._backoff
        pause = min(_MAX_BACKOFF_S, pause) * random.uniform(0.8, 1.2)
        if self._wake.wait(pause):
            return  # woken by a flush or a full batch: the loop tries again now
