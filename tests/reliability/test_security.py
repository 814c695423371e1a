"""Security (issue 7 item 5): the API key never appears anywhere we write or say; TLS
verification cannot be turned off; the dev server binds to loopback and enforces its key;
the spool and the store are private files; the ``redact`` hook sees every record before
export, and nothing built in scrubs ordinary fields or ids.

The key scans collect every text the library produced during faulted deliveries (log
records of *all* loggers at DEBUG, exception messages, reprs, spool files, store files, CLI
output, the dev server's request log) and look for the key and for its distinctive tail.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _delivery_helpers import flush_until_ok

import galileo_sessions as gs
from galileo_sessions import _internal, cli
from galileo_sessions._client import GalileoClient
from galileo_sessions._config import Settings
from galileo_sessions._store import Store
from galileo_sessions.server import ServerThread
from galileo_sessions.server.runner import _parser as serve_parser

pytestmark = pytest.mark.reliability

SECRET = "gsk-SECRET-7f3a9c"
TAIL = "7f3a9c"  # a partial leak (a masked prefix, a cut string) still shows this


def leaks(texts: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: ...{text[max(0, text.find(TAIL) - 60):text.find(TAIL) + 20]}..."
            for where, text in texts if SECRET in text or TAIL in text]


@pytest.fixture
def secret_server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(tmp_path / "server.db", api_key=SECRET) as srv:  # owns the store
        yield srv


def admin(srv: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Galileo-API-Key": SECRET}, timeout=10)


def set_faults(srv: ServerThread, **config: Any) -> None:
    with admin(srv) as c:
        assert c.put("/_admin/faults", json=config).status_code == 200


def log_texts(records: list[logging.LogRecord]) -> list[tuple[str, str]]:
    formatter = logging.Formatter()
    out: list[tuple[str, str]] = []
    for r in records:
        where = f"log {r.name}:{r.levelname}"
        out.append((where, r.getMessage()))
        out.append((where + " args", repr(r.args)))
        if r.exc_info:
            out.append((where + " exc", formatter.formatException(r.exc_info)))
            exc = r.exc_info[1]
            out.extend((where + " exc chain", text) for text in exception_texts(exc))
        if r.exc_text:
            out.append((where + " exc_text", r.exc_text))
        if r.stack_info:
            out.append((where + " stack", r.stack_info))
    return out


def exception_texts(exc: BaseException | None) -> list[str]:
    """str, repr, attributes and the formatted traceback of ``exc`` and its whole chain."""
    out: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out += [str(exc), repr(exc), repr(vars(exc)) if hasattr(exc, "__dict__") else "",
                "".join(traceback.format_exception(exc))]
        exc = exc.__cause__ or exc.__context__
    return out


def file_texts(root: Path) -> list[tuple[str, str]]:
    return [(f"file {p}", p.read_bytes().decode("latin-1"))
            for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG (root level DEBUG, caplog on the root)."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    _internal._once_keys.clear()
    _internal._last_logged.clear()
    try:
        yield caplog
    finally:
        root.setLevel(old)


@gs.span(type="llm", model="m")
def llm(prompt: str) -> str:
    return f"answer to {prompt}"


@gs.trace
def turn(prompt: str) -> str:
    return llm(prompt)


def run_some(user: str, count: int = 3) -> list[Any]:
    handles: list[Any] = []
    for index in range(count):
        with gs.session("chat", external_id=user) as s:
            handles.append(s)
            with gs.span("tool", type="tool") as span_handle:
                handles.append(span_handle)
            turn(f"{user} {index}")
    return handles


def test_api_key_never_appears_in_logs_errors_reprs_files_cli_or_server_log(
        secret_server: ServerThread, tmp_path: Path, all_logs: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    srv = secret_server
    spool = tmp_path / "spool"
    local_store = tmp_path / "local" / "store.db"
    texts: list[tuple[str, str]] = []
    objects: list[Any] = []

    def snapshot_objects() -> None:
        runtime = gs._runtime.current
        assert runtime is not None and runtime.pipeline is not None
        objects.extend([runtime.settings, runtime.pipeline, runtime.pipeline.exporter,
                        getattr(runtime.pipeline.exporter, "client", None),
                        runtime.pipeline.sender, runtime.pipeline.worker,
                        runtime.pipeline.spool, runtime.pipeline.stats, runtime])

    base = {"api_url": srv.url, "api_key": SECRET, "spool_dir": str(spool),
            "store": str(local_store), "flush_interval": 0.05, "read_timeout": 2.0,
            "connect_timeout": 1.0, "shutdown_timeout": 1.0}

    # 1. fire-and-forget through 503s, then a 422 (not retried), then connection refused
    gs.configure(**base)
    snapshot_objects()
    set_faults(srv, status=503, rate=1.0, count=6)
    objects += run_some("user-503")
    result = flush_until_ok(20)
    objects += [result, gs.stats()]
    set_faults(srv, status=422, rate=1.0, count=2)
    objects += run_some("user-422", 1)
    objects.append(gs.flush(5))
    set_faults(srv)
    srv.stop()
    objects += run_some("user-refused", 2)
    objects.append(gs.flush(0.5))
    objects.append(gs.shutdown(timeout=0.5))  # spools what the refused server did not take
    srv.start()

    # 2. reliable mode: DeliveryError after reliable_timeout
    gs.configure(**base, mode="reliable", reliable_timeout=0.5)
    snapshot_objects()
    set_faults(srv, status=503, rate=1.0)
    with pytest.raises(gs.DeliveryError) as info:
        run_some("user-reliable", 1)
    texts += [("DeliveryError", t) for t in exception_texts(info.value)]
    set_faults(srv)
    objects.append(gs.shutdown(timeout=1))

    # 3. a wrong key (401): the key the client holds must not be echoed either
    wrong_store = Store(tmp_path / "other.db")
    other = ServerThread(wrong_store, api_key="server-side-other-key").start()
    try:
        gs.configure(**dict(base, api_url=other.url, spool_dir=str(tmp_path / "spool401")))
        snapshot_objects()
        objects += run_some("user-401", 1)
        objects.append(gs.flush(1))
        objects.append(gs.shutdown(timeout=0.5))
        probe = GalileoClient(api_url=other.url, api_key=SECRET)
        with pytest.raises(gs.ApiStatusError) as status_info:
            probe.request("GET", "/projects/all")
        objects.append(probe)
        probe.close()
        assert status_info.value.status_code == 401
        texts += [("ApiStatusError", t) for t in exception_texts(status_info.value)]
    finally:
        other.stop()
        wrong_store.close()
    probe = GalileoClient(api_url=f"http://127.0.0.1:{_free_port()}", api_key=SECRET)
    with pytest.raises(gs.ApiConnectionError) as refused:
        probe.request("GET", "/projects/all", timeout=1)
    probe.close()
    texts += [("ApiConnectionError", t) for t in exception_texts(refused.value)]

    # 4. the replayed spool reaches the server with the right key
    gs.configure(**base)
    flush_until_ok(20)
    gs.shutdown(timeout=2)

    # 5. the CLI, with the key on the command line
    capsys.readouterr()
    assert cli.main(["sessions", "--server", srv.url, "--api-key", SECRET]) == 0
    listing = capsys.readouterr()
    session_id = re.search(r"[0-9a-f]{8}", listing.out)
    assert session_id is not None, listing.out
    assert cli.main(["show", session_id.group(0), "--server", srv.url, "--api-key",
                     SECRET]) == 0
    shown = capsys.readouterr()
    assert cli.main(["sessions", "--server", srv.url, "--api-key", SECRET + "-wrong"]) == 1
    refused_cli = capsys.readouterr()
    assert cli.main(["sessions", "--server", f"http://127.0.0.1:{_free_port()}",
                     "--api-key", SECRET]) == 1
    down_cli = capsys.readouterr()
    texts += [("cli " + name, out.out + out.err) for name, out in
              (("sessions", listing), ("show", shown), ("401", refused_cli),
               ("refused", down_cli))]
    assert "Unauthorized" in refused_cli.err or "401" in refused_cli.err

    # 6. the dev server's own request log
    with admin(srv) as c:
        requests_log = c.get("/_admin/requests", params={"limit": 100_000}).text
    texts.append(("/_admin/requests", requests_log))
    assert '"galileo-api-key":"***"' in requests_log.replace(" ", "")

    # scan everything
    texts += log_texts(all_logs.records)
    texts.append(("caplog text", all_logs.text))
    texts += [(f"repr {type(o).__name__}", repr(o)) for o in objects]
    texts += [(f"str {type(o).__name__}", str(o)) for o in objects]
    texts += file_texts(tmp_path)  # spools, the local store, the server store (+ -wal)
    assert any(p.name.startswith("server.db") for p in tmp_path.iterdir())
    found = leaks(texts)
    assert found == [], found
    assert leaks([("control", f"masked gsk-****-{TAIL}")])  # the scan does catch a leak
    # the scan saw what it was meant to: faulted deliveries were logged, files were written
    messages = " ".join(r.getMessage() for r in all_logs.records)
    assert "503" in messages and "422" in messages and "401" in messages
    assert len(all_logs.records) > 20
    assert sum(1 for where, _ in texts if where.startswith("file ")) >= 3


def _free_port() -> int:
    from galileo_sessions.server.runner import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    sock.close()
    return port


# --- TLS -------------------------------------------------------------------------------------

def test_tls_verification_is_on_and_cannot_be_turned_off() -> None:
    client = GalileoClient(api_url="https://api.example.invalid", api_key=SECRET)
    http = client._http()
    context = http._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert not http.follow_redirects  # the key is never carried to another host
    client.close()
    params = set(inspect.signature(GalileoClient.__init__).parameters)
    assert not params & {"verify", "ssl_verify", "insecure", "verify_ssl", "cert"}
    for option in ("verify", "ssl_verify", "verify_ssl", "insecure", "tls_verify",
                   "disable_ssl", "ssl"):
        assert option not in Settings.option_names()
        with pytest.raises(gs.ConfigError) as info:
            gs.configure(api_url="https://api.example.invalid", api_key=SECRET,
                         **{option: False})
        assert info.value.option == option
    # nothing in the environment turns it off either
    env = dict(os.environ, GALILEO_SSL_VERIFY="0", GALILEO_VERIFY="false", SSL_VERIFY="0")
    settings = Settings.from_options({"api_key": SECRET, "api_url": "https://x.invalid"},
                                     environ=env)
    from galileo_sessions._runtime import build_exporter

    exporter = build_exporter(settings)
    client = exporter._client  # type: ignore[attr-defined]
    ctx = client._http()._transport._pool._ssl_context
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    exporter.close()


# --- the dev server ----------------------------------------------------------------------------

def test_dev_server_binds_loopback_by_default() -> None:
    assert serve_parser().parse_args([]).host == "127.0.0.1"
    assert inspect.signature(ServerThread.__init__).parameters["host"].default == "127.0.0.1"


def test_dev_server_cli_enforces_api_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALILEO_", "PYTEST_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-m", "galileo_sessions.cli", "serve", "--port", "0", "--quiet",
         "--api-key", SECRET, "--store", str(tmp_path / "srv.db")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert match is not None, banner + proc.stderr.read() if proc.stderr else banner
        url = match.group(0)
        assert "API key required" in banner and TAIL not in banner
        assert httpx.get(url + "/projects/all", timeout=10).status_code == 401
        assert httpx.get(url + "/projects/all", headers={"Galileo-API-Key": "wrong"},
                         timeout=10).status_code == 401
        assert httpx.get(url + "/projects/all", headers={"Galileo-API-Key": SECRET},
                         timeout=10).status_code == 200
        assert httpx.get(url + "/_admin/requests", timeout=10).status_code == 401
        assert httpx.get(url + "/healthcheck", timeout=10).status_code == 200
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=20)
    assert TAIL not in err


# --- file modes --------------------------------------------------------------------------------

def test_spool_and_store_are_private_files(tmp_path: Path) -> None:
    """Created 0600 in 0700 folders, whatever the umask (checked with umask 000)."""
    old = os.umask(0)
    try:
        store = tmp_path / "fresh" / "store.db"
        spool = tmp_path / "fresh-spool"
        gs.configure(store=str(store), spool_dir=str(spool), flush_interval=0.05)
        run_some("user-modes", 2)
        assert gs.flush(10).ok
        open_files = [store, *store.parent.glob("store.db-*")]  # -wal and -shm while open
        assert any(p.name.endswith("-wal") for p in open_files)
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in open_files}
        # a spool file: the store is made unwritable for a moment so records overflow
        gs.configure(store=str(tmp_path / "fresh" / "store.db" / "x"), spool_dir=str(spool),
                     flush_interval=0.05, shutdown_timeout=0.2)
        run_some("user-spooled", 1)
        gs.shutdown(timeout=0.2)
        chains = gs.SQLiteChainStore(tmp_path / "chains" / "chains.db")
        chains_path = tmp_path / "chains" / "chains.db"
    finally:
        os.umask(old)
    spooled = list(spool.glob("*.json"))
    assert spooled, "nothing was spooled"
    assert modes and set(modes.values()) == {0o600}, modes
    for path in spooled:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))
    for directory in (store.parent, spool):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    if chains_path.exists():
        assert stat.S_IMODE(chains_path.stat().st_mode) == 0o600
    del chains


# --- redaction ---------------------------------------------------------------------------------

def test_redact_hook_sees_every_record_and_the_server_stores_exactly_its_output(
        secret_server: ServerThread, tmp_path: Path) -> None:
    srv = secret_server
    calls: dict[str, int] = {}
    seen_keys: dict[str, set[str]] = {}
    outputs: dict[str, dict[str, Any]] = {}  # record id (or session external id) -> output
    lock = threading.Lock()

    def redact(record: dict[str, Any]) -> dict[str, Any]:
        kind = record["type"]
        text = json.dumps(record)
        masked = json.loads(text.replace("PII-4111", "[card]"))
        masked.setdefault("user_metadata", {})
        masked["user_metadata"] = dict(masked["user_metadata"] or {}, redacted_by="hook")
        with lock:
            calls[kind] = calls.get(kind, 0) + 1
            seen_keys.setdefault(kind, set()).update(record)
            outputs[record.get("id") or f"session:{record.get('external_id')}"] = masked
        return masked

    @gs.span(type="retriever")
    def retrieve(q: str) -> list[str]:
        return [f"doc about {q}"]

    @gs.span(type="tool")
    def tool(card: str) -> str:
        return f"charged {card}"

    @gs.span(type="agent")
    def agent(card: str) -> str:
        retrieve(card)
        gs.current_span().update(metadata={"note": "PII-4111 in metadata"})
        return tool(card) + llm(card)

    @gs.span(type="workflow")
    def late(card: str) -> str:
        return f"late {card}"

    @gs.trace
    def handle(card: str, pool: gs.ContextExecutor) -> str:
        pool.submit(late, card)
        return agent(card)

    gs.configure(api_url=srv.url, api_key=SECRET, spool_dir=str(tmp_path / "spool"),
                 flush_interval=0.05, redact=redact)
    with gs.ContextExecutor(max_workers=2) as pool:
        for user in range(2):
            with gs.session(f"chat PII-4111 {user}", external_id=f"PII-4111-{user}",
                            metadata={"card": "PII-4111"}):
                handle("PII-4111", pool)
    flush_until_ok(20)
    gs.shutdown(timeout=2)

    assert calls == {"session": 2, "trace": 2, "agent": 2, "retriever": 2, "tool": 2, "llm": 2,
                     "workflow": 2}, calls
    for kind in ("trace", "agent", "retriever", "tool", "llm", "workflow"):
        assert {"id", "name", "input", "output", "user_metadata", "tags",
                "created_at"} <= seen_keys[kind], (kind, seen_keys[kind])
    assert {"name", "external_id", "user_metadata"} <= seen_keys["session"]

    db = srv.store.path
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        records = {rid: json.loads(data) for rid, data in
                   conn.execute("SELECT id, data FROM records")}
        sessions = conn.execute("SELECT name, external_id, data FROM sessions").fetchall()
    finally:
        conn.close()
    assert len(records) == 12 and len(sessions) == 2
    for rid, stored in records.items():
        want = outputs[rid]
        for key in ("name", "input", "output", "user_metadata", "tags"):
            assert stored[key] == want[key], (rid, key, stored[key], want[key])
    for name, external_id, data in sessions:
        want = outputs[f"session:{external_id.replace('[card]', 'PII-4111')}"]
        assert (name, external_id) == (want["name"], want["external_id"])
        assert json.loads(data)["user_metadata"] == want["user_metadata"]
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("server.db-*"))
    assert b"PII-4111" not in raw
    with admin(srv) as c:
        assert "PII-4111" not in c.get("/_admin/requests", params={"limit": 10_000}).text


def test_built_in_behaviour_never_scrubs_ordinary_fields_or_ids(
        secret_server: ServerThread, tmp_path: Path) -> None:
    srv = secret_server
    meta = {"session_id": "sess-given-by-user", "api_key_hint": "last4-9c0d",
            "password": "hunter2", "token": "tok-123", "trace_id": "t-1", "id": "42",
            "email": "a@example.com"}
    gs.configure(api_url=srv.url, api_key=SECRET, spool_dir=str(tmp_path / "spool"),
                 flush_interval=0.05)
    handles = []

    @gs.trace
    def work(password: str, session_id: str) -> str:
        gs.current_span().update(metadata=meta)
        return f"{password}/{session_id}"

    for index in range(3):
        with gs.session("chat", external_id="user-ids", metadata=meta) as s:
            handles.append(s)
            assert work("hunter2", "sess-given-by-user") == "hunter2/sess-given-by-user"
            assert work("again", str(index)) == f"again/{index}"
    flush_until_ok(20)
    gs.shutdown(timeout=2)
    ids = [h.wait(5) for h in handles]
    assert all(ids) and len(set(ids)) == 3

    conn = sqlite3.connect(f"file:{srv.store.path}?mode=ro", uri=True)
    try:
        traces = conn.execute("SELECT session_id, data FROM records WHERE type = 'trace' "
                              "ORDER BY seq").fetchall()
        sessions = {sid: (prev, json.loads(data)) for sid, prev, data in conn.execute(
            "SELECT id, previous_session_id, data FROM sessions")}
    finally:
        conn.close()
    assert len(traces) == 6
    assert [t[0] for t in traces] == [ids[0], ids[0], ids[1], ids[1], ids[2], ids[2]]
    for _, data in traces:
        body = json.loads(data)
        assert body["user_metadata"] == meta
    assert json.loads(traces[0][1])["input"] == json.dumps(
        {"password": "hunter2", "session_id": "sess-given-by-user"}, separators=(",", ":"))
    for index, sid in enumerate(ids):
        previous, body = sessions[sid]
        assert body["user_metadata"] == meta
        assert previous == (ids[index - 1] if index else None)
