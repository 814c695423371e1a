"""Servers the benchmarks talk to, all on 127.0.0.1.

``DevServer`` runs ``galileo-sessions serve`` in a separate process (port 0: a free port,
read from its first line of output). ``LoopbackSink`` is a tiny stdlib HTTP server in a
thread that answers ``200 {}`` to anything, for the peer SDKs. ``dead_url`` is a URL where
nothing listens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["DevServer", "LoopbackSink", "dead_url"]

_URL_RE = re.compile(r"on (http://[^\s]+)")


def _serve_command() -> list[str]:
    exe = shutil.which("galileo-sessions", path=os.path.dirname(sys.executable))
    if exe is not None:
        return [exe, "serve"]
    return [sys.executable, "-c", "import sys; from galileo_sessions.cli import main; "
            "sys.exit(main(['serve', *sys.argv[1:]]))"]


class DevServer:
    """``galileo-sessions serve --port 0 --store PATH [--latency-ms N]`` in its own process."""

    def __init__(self, store: Path, *, latency_ms: float = 0.0) -> None:
        self.store = store
        self.latency_ms = latency_ms
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> DevServer:
        cmd = [*_serve_command(), "--port", "0", "--store", str(self.store), "--quiet"]
        if self.latency_ms:
            cmd += ["--latency-ms", str(self.latency_ms)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True)
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self._proc.stdout.readline()
        match = _URL_RE.search(line)
        if match is None:
            self.stop()
            raise RuntimeError(f"dev server did not start: {line!r}")
        self.url = match.group(1)
        # Drain its output in the background so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        while time.monotonic() < deadline:
            try:
                self.stats()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dev server did not answer /_admin/stats")

    def _drain(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdout is not None:
            for _ in proc.stdout:
                pass

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def stats(self) -> dict[str, Any]:
        """The server's ``/_admin/stats`` (store counts, request counters)."""
        with urllib.request.urlopen(self.url + "/_admin/stats", timeout=30) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def traces(self) -> int:
        return int(self.stats()["store"]["traces"])

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.hits += 1  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackSink:
    """Answers ``200 {}`` to every request, in a daemon thread."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _SinkHandler)
        self._server.daemon_threads = True
        self._server.hits = 0  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hits(self) -> int:
        return int(self._server.hits)  # type: ignore[attr-defined]

    def __enter__(self) -> LoopbackSink:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


def dead_url() -> str:
    """A loopback URL where nothing listens (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
