"""The disk spool: records that are not yet acknowledged, as files that outlive the process.

Two uses. **Write-ahead** (reliable mode): a record is written before it is sent and removed
once the server acknowledges it, so ``kill -9`` mid-send loses nothing. **Overflow**
(fire-and-forget): when the in-memory queue is full, or at shutdown with the server
unreachable, records go here instead of being dropped.

One JSON file per write (a list of ops: one for a reliable write-ahead, a batch for
overflow), named ``<pid>-<seq>-<w|o>.json`` and written atomically
(temp file + rename), mode ``0600`` in a ``0700`` directory. A file belongs to the process
whose pid it carries: replay takes only files of processes that are gone (and, once the
server answers again, this process's own overflow files), so a live process's in-flight
write-ahead is never sent twice by a neighbour. The total size is bounded; past the bound
``write`` refuses and the caller counts a drop.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Spool"]

_counter = itertools.count()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """A bounded directory of pending ops. Thread-safe; never raises on a bad file."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None
        self._ready = False
        self.written: set[str] = set()  # names of the files this Spool wrote (still there)

    def _prepare(self) -> None:
        if not self._ready:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._ready = True

    def _size(self) -> int:
        if self._bytes is None:
            total = 0
            for path in self._files():
                try:
                    total += path.stat().st_size
                except OSError:
                    continue
            self._bytes = total
        return self._bytes

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.glob("*.json") if p.is_file())
        except OSError:
            return []

    def write(self, records: list[dict[str, Any]], *, overflow: bool) -> Path | None:
        """Store ``records`` in one file; return its path, or None when the spool is full."""
        data = json.dumps({"v": 1, "ops": records}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        tag = "o" if overflow else "w"
        name = f"{os.getpid()}-{next(_counter):012d}-{tag}.json"
        with self._lock:
            self._prepare()
            if self._size() + len(data) > self.max_bytes:
                return None
            path = self.directory / name
            tmp = self.directory / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:  # a short write (disk nearly full) must not leave a cut file
                    view = view[os.write(fd, view):]
            except BaseException:
                os.close(fd)
                tmp.unlink(missing_ok=True)  # a full disk must not keep the partial file
                raise
            os.close(fd)
            self.written.add(name)
            os.replace(tmp, path)
            self._bytes = self._size() + len(data)
        return path

    def remove(self, path: Path) -> None:
        with self._lock:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                return
            finally:
                self.written.discard(path.name)
            if self._bytes is not None:
                self._bytes = max(0, self._bytes - size)

    def quarantine(self, path: Path) -> None:
        """Set an unreadable file aside as ``*.corrupt`` (never replayed, kept to inspect)."""
        with self._lock:
            try:
                size = path.stat().st_size
                os.replace(path, path.with_suffix(".corrupt"))
            except OSError:
                return
            self.written.discard(path.name)
            if self._bytes is not None:
                self._bytes = max(0, self._bytes - size)

    def claim(self, *, include_own_overflow: bool
              ) -> Iterator[tuple[Path, list[dict[str, Any]] | None, bool]]:
        """Files to replay, oldest first, as ``(path, records, foreign)``: dead processes'
        files (claimed by renaming them to this pid; ``foreign`` is True), and this process's
        overflow files if asked. An unreadable file yields ``None`` as its records."""
        if not self.directory.is_dir():
            return
        me = os.getpid()
        for path in self._files():
            pid_text, _, rest = path.name.partition("-")
            try:
                pid = int(pid_text)
            except ValueError:
                continue
            foreign = pid != me
            if not foreign:
                if not (include_own_overflow and rest.split("-", 1)[-1].startswith("o")):
                    continue
                claimed = path
            else:
                if _alive(pid):
                    continue
                claimed = path.with_name(f"{me}-{rest}")
                try:
                    os.replace(path, claimed)  # atomic: one process wins the claim
                except OSError:
                    continue
            try:
                data = json.loads(claimed.read_bytes())
                ops = data.get("ops") if isinstance(data, dict) and data.get("v") == 1 else None
                yield claimed, ops if isinstance(ops, list) else None, foreign
            except (OSError, ValueError):
                yield claimed, None, foreign

    def pending_count(self) -> int:
        return len(self._files())
