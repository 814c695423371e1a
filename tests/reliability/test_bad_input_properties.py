"""Bad input, property-based (issue 7 item 4): whatever the user's code passes around, and
whatever state the disk or the configuration is in, the user's function behaves exactly as
undecorated, every request body is valid and bounded, and nothing is lost that could be kept.

Hypothesis generates the values; each property keeps ``max_examples`` modest so the file runs
in well under a minute. The disk scenarios (corrupt, unwritable, full store; corrupt spool)
are checked against the local SQLite store with the same auditor as the load tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _delivery_helpers import flush_until_ok
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import galileo_sessions as gs
from galileo_sessions import _internal
from galileo_sessions._pipeline.spool import Spool
from galileo_sessions.testing import Capture

from ._common import audit_store, run_turn

pytestmark = pytest.mark.reliability

MAX_FIELD = 2_000
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])
DISK = settings(PROPERTY, max_examples=6)


@pytest.fixture(autouse=True)
def _fresh_log_once() -> Iterator[None]:
    """``log_once`` is per process: forget earlier tests' keys so "logged once" is checkable."""
    _internal._once_keys.clear()
    _internal._last_logged.clear()
    yield
    _internal._once_keys.clear()


# --- odd values ------------------------------------------------------------------------------

class Raises:
    """repr, str, eq, hash, bool, iter, len and getattr of fields all raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def __str__(self) -> str:
        raise RuntimeError("str exploded")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq exploded")

    def __hash__(self) -> int:
        raise RuntimeError("hash exploded")

    def __bool__(self) -> bool:
        raise RuntimeError("bool exploded")

    def __len__(self) -> int:
        raise RuntimeError("len exploded")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"getattr {name} exploded")


class BadStr:
    """Hashable, but its repr and str raise (a metadata key or value)."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    def __str__(self) -> str:
        raise RuntimeError("str exploded")


class Slotted:
    __slots__ = ("a",)

    def __init__(self) -> None:  # ``a`` is never set: reading it raises AttributeError
        pass


def _gen() -> Iterator[int]:
    yield 1


def _cyclic_list() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def _cyclic_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"k": "v"}
    value["self"] = {"up": value}
    return value


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def _deep_dict(levels: int) -> Any:
    value: Any = {}
    for index in range(levels):
        value = {f"k{index}": value}
    return value


SPECIALS: list[Any] = [
    "x" * 1_000_000, "\u00e9" * 300_000, b"\xff\xfe" * 200_000, bytearray(b"\x80" * 5000),
    memoryview(b"abc"), b"\xc3\x28\xa0\xa1", "lone \ud800 and \udfff", "\x00nul",
    math.nan, math.inf, -math.inf, 10**400, -(10**5000), 1e308, -0.0, 2**63,
    Raises(), Slotted(), threading.Lock(), threading.RLock(), threading.Event(), _gen(),
    (lambda: None), object(), type, Raises, Exception("e"), ValueError(Raises()),
    _deep(5000), _deep_dict(300), {Raises}, frozenset({1, "a"}), range(10**9), Ellipsis,
    NotImplemented, complex(1, math.nan), {1: "int key", None: "none key", (1, 2): "tuple"},
    {math.nan: 1, 1.5: 2, b"k": 3}, sys.stdout, asyncio.Lock(), Path("/tmp"), 1j,
]


def _special(index: int) -> Any:
    if index == len(SPECIALS):
        return _cyclic_list()
    if index == len(SPECIALS) + 1:
        return _cyclic_dict()
    return SPECIALS[index]


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=50)
leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), ANY_TEXT, st.binary(max_size=50),
    st.integers(0, len(SPECIALS) + 1).map(_special),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.tuples(children, children),
        st.dictionaries(st.one_of(ANY_TEXT, st.integers(), st.none()), children, max_size=5),
        st.frozensets(st.one_of(st.integers(), ANY_TEXT), max_size=3),
    ),
    max_leaves=12,
)


class UserError(Exception):
    """What the user's function raises, carrying an arbitrary value."""


@gs.span(type="tool")
def echo(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value


@gs.span(type="workflow")
def fail(value: Any) -> Any:
    raise UserError(value)


@gs.span(type="agent")
async def aecho(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


@gs.span(type="agent")
async def afail(value: Any) -> Any:
    raise UserError(value)


@gs.span(type="workflow")
def gen(items: list[Any]) -> Iterator[Any]:
    yield from items


@gs.span(type="workflow")
async def agen(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


@gs.trace
def traced(value: Any, extra: Any) -> Any:
    echo(extra, value, k=extra)
    return value


def check_bodies(cap: Capture, max_field: int = MAX_FIELD) -> None:
    """Every body is valid strict JSON, UTF-8 encodable, each text field within the bound."""
    assert cap.requests, "nothing was captured"
    for request in cap.requests:
        body = request["body"]
        json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        for record in _records(body):
            for key in ("input", "output", "name"):
                field = record.get(key)
                if isinstance(field, str):
                    assert len(field.encode("utf-8")) <= max_field, (key, len(field))
            for key, value in (record.get("user_metadata") or {}).items():
                assert isinstance(key, str) and isinstance(value, str)
                assert len(value.encode("utf-8")) <= max_field, (key, len(value))


def _records(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = [*body.get("traces", ()), *body.get("spans", ())]
    if "traces" not in body and "spans" not in body:
        stack.append(body)  # a session body
    while stack:
        record = stack.pop()
        yield record
        stack.extend(record.get("spans") or ())


@PROPERTY
@given(value=values, extra=values)
def test_sync_function_returns_and_raises_exactly_as_undecorated(value: Any, extra: Any) -> None:
    with gs.testing.capture(max_field_bytes=MAX_FIELD) as cap:
        assert echo(value, extra, key=extra) is value
        assert traced(value, extra) is value
        with pytest.raises(UserError) as info:
            fail(value)
        assert info.value.args[0] is value
        with gs.session("s", external_id="u"):
            assert traced(extra, value) is extra
    check_bodies(cap)
    assert len(cap.traces) == 4  # echo, traced, fail, traced in the session
    assert {t["spans"][0]["status_code"] for t in cap.traces if t["name"] == "fail"} == {500}


@settings(PROPERTY, max_examples=60)
@given(value=values, items=st.lists(values, max_size=4))
def test_async_and_generator_functions_behave_as_undecorated(value: Any,
                                                             items: list[Any]) -> None:
    async def main() -> None:
        assert await aecho(value) is value
        with pytest.raises(UserError) as info:
            await afail(value)
        assert info.value.args[0] is value
        got = [item async for item in agen(items)]
        assert len(got) == len(items) and all(a is b for a, b in zip(got, items, strict=True))

    with gs.testing.capture(max_field_bytes=MAX_FIELD) as cap:
        asyncio.run(main())
        got = list(gen(items))
        assert len(got) == len(items) and all(a is b for a, b in zip(got, items, strict=True))
        partial = gen([value, value])
        assert next(partial) is value
        partial.close()  # abandoned half-way: still recorded, no error
    check_bodies(cap)
    assert len(cap.traces) == 5


def test_generator_that_raises_mid_stream_keeps_the_exception() -> None:
    @gs.span
    def broken() -> Iterator[int]:
        yield 1
        raise UserError(Raises())

    with gs.testing.capture(max_field_bytes=MAX_FIELD) as cap:
        stream = broken()
        assert next(stream) == 1
        with pytest.raises(UserError):
            next(stream)
    check_bodies(cap)
    assert cap.traces[0]["spans"][0]["status_code"] == 500


# --- metadata --------------------------------------------------------------------------------

meta_keys = st.one_of(ANY_TEXT, st.integers(), st.floats(), st.binary(max_size=20),
                      st.builds(BadStr), st.text(min_size=3000, max_size=3000))
meta_values = st.one_of(ANY_TEXT, st.integers(), st.floats(), st.booleans(),
                        st.binary(max_size=20), st.builds(BadStr), st.builds(Raises),
                        st.just(10**400), st.just(10**5000),
                        st.text(min_size=5000, max_size=5000), st.lists(st.integers()))
metadata = st.dictionaries(meta_keys, meta_values, max_size=8)


def _plain(text: object) -> bool:
    """Ordinary text: UTF-8 encodable and within the field bound."""
    if not isinstance(text, str):
        return False
    try:
        return len(text.encode("utf-8")) <= MAX_FIELD
    except UnicodeEncodeError:
        return False


@PROPERTY
@given(session_meta=metadata, span_meta=metadata, decorator_meta=metadata)
def test_arbitrary_metadata_becomes_strings_in_the_wire_body(
        session_meta: dict[Any, Any], span_meta: dict[Any, Any],
        decorator_meta: dict[Any, Any]) -> None:
    @gs.span(type="tool", metadata=decorator_meta)
    def tool() -> str:
        gs.current_span().update(metadata=span_meta)
        return "ok"

    with gs.testing.capture(max_field_bytes=MAX_FIELD) as cap:
        with gs.session("s", external_id="user-1", metadata=session_meta):
            assert tool() == "ok"
    check_bodies(cap)
    (session,) = cap.sessions
    (span,) = cap.traces[0]["spans"]
    # Ordinary text keys and values arrive exactly as given (no scrubbing, no renaming).
    for given_meta, stored in ((session_meta, session["user_metadata"] or {}),
                               (span_meta, span["user_metadata"])):
        for key, value in given_meta.items():
            if _plain(key) and _plain(value) and key not in ("error.type", "error.message"):
                assert stored.get(key) == value, (key, value, stored.get(key))


# --- configuration ---------------------------------------------------------------------------

NUMBER_OPTIONS = ["max_field_bytes", "max_batch_records", "max_batch_bytes", "max_queue_bytes",
                  "spool_max_bytes", "reliable_timeout", "shutdown_timeout", "flush_interval",
                  "connect_timeout", "read_timeout"]
bad_numbers = st.one_of(
    st.integers(max_value=0), st.floats(max_value=0), st.just(math.nan), st.just(math.inf),
    st.just(-math.inf), st.just("nan"), st.just("inf"), st.just("1e400"), st.booleans(),
    st.text(st.characters(categories=["L"]), min_size=1, max_size=5), st.just(object()),
    st.just([1]), st.just(None).map(lambda _: {"n": 1}))
bad_text = st.one_of(st.just(""), st.just("   "), st.integers(), st.just(b"bytes"),
                     st.just("nul\x00byte"), st.just("lone\ud800"), st.just(["list"]))
bad_bool = st.one_of(st.text(max_size=8).filter(
    lambda s: s.strip().lower() not in {"1", "true", "yes", "on", "t", "0", "false", "no", "off",
                                        "f", ""}), st.integers(min_value=2), st.just(0.5))
bad_uuid = st.one_of(st.text(max_size=40).filter(lambda s: not _is_uuid(s)), st.integers())


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


bad_options = st.one_of(
    st.tuples(st.sampled_from(NUMBER_OPTIONS), bad_numbers),
    st.tuples(st.sampled_from(["project", "log_stream", "store", "api_key"]), bad_text),
    st.tuples(st.sampled_from(["capture_input", "capture_output", "enabled", "otel"]), bad_bool),
    st.tuples(st.sampled_from(["project_id", "log_stream_id", "experiment_id"]), bad_uuid),
    st.tuples(st.just("mode"), st.text(max_size=20).filter(
        lambda s: s.strip().lower().replace("-", "_") not in ("reliable", "fire_and_forget"))),
    st.tuples(st.sampled_from(["api_url", "console_url"]),
              st.sampled_from(["ftp://host", "file:///etc/passwd", "", "  ", "gopher://x", 7])),
    st.tuples(st.just("extra_headers"),
              st.sampled_from(["not json", "[1]", {"X-A": 1}, {"bad name": "v"},
                               {"X-A": "line\nbreak"}, {"X-A": "caf\u00e9"}, 5])),
    st.tuples(st.just("spool_dir"), st.sampled_from([5, b"bytes", "nul\x00", "   "])),
    st.tuples(st.sampled_from(["redact", "transport", "chain_store"]),
              st.sampled_from(["str", 5, object()])),
    st.tuples(st.text(st.characters(categories=["Ll"]), min_size=1, max_size=12).filter(
        lambda s: s not in gs._config.Settings.option_names()), st.integers()),
)


@PROPERTY
@given(option_value=bad_options)
def test_malformed_configure_values_raise_config_error_naming_the_option(
        option_value: tuple[str, Any]) -> None:
    option, value = option_value
    before = gs._runtime.current
    with pytest.raises(gs.ConfigError) as info:
        gs.configure(**{option: value})
    assert info.value.option == option, (option, value, info.value)
    assert str(info.value).startswith(option)
    assert gs._runtime.current is before


ENV_BAD: dict[str, st.SearchStrategy[str]] = {
    "GALILEO_SESSIONS_MODE": st.text(st.characters(categories=["L", "N"]), min_size=1,
                                     max_size=12).filter(
        lambda s: s.lower() not in ("reliable", "fire_and_forget")),
    "GALILEO_PROJECT_ID": st.text(st.characters(categories=["L", "N", "P"]), min_size=1,
                                  max_size=40).filter(lambda s: not _is_uuid(s)),
    "GALILEO_LOG_STREAM_ID": st.just("not-a-uuid"),
    "GALILEO_SESSIONS_CAPTURE": st.sampled_from(["maybe", "2", "sometimes", "yes please"]),
    "GALILEO_SESSIONS_DISABLED": st.sampled_from(["maybe", "2", "nah"]),
    "GALILEO_SESSIONS_OTEL": st.sampled_from(["perhaps", "-1"]),
    "GALILEO_EXTRA_HEADERS": st.sampled_from(["not json", "[1,2]", '{"X": 1}', '{"a b": "v"}',
                                             '{"X": "caf\u00e9"}']),
    "GALILEO_API_URL": st.sampled_from(["ftp://x", "file:///etc", "http://", "https:///p"]),
    "GALILEO_CONSOLE_URL": st.sampled_from(["ftp://console", "mailto://a@b"]),
    "GALILEO_API_KEY": st.sampled_from(["   ", "key\twith\x7fdel", "k\u00e9y"]),
}


@settings(PROPERTY, max_examples=60)
@given(env=st.dictionaries(st.sampled_from(sorted(ENV_BAD)), st.just(""), min_size=1,
                           max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: ENV_BAD[k] for k in keys})))
def test_malformed_environment_logs_an_error_and_never_raises(
        env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    gs.shutdown(timeout=1)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with caplog.at_level(logging.ERROR, logger="galileo_sessions"):
            assert echo(5) == 5
            assert traced("v", "w") == "v"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "bad configuration in the environment" in errors[0].getMessage()
        assert gs.stats()["enqueued"] == 0  # tracing is off, the functions ran
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        gs.shutdown(timeout=1)


# --- the store: corrupt, unwritable, full ------------------------------------------------------

def _store_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if "cannot write the local store" in r.getMessage()]


def _bad_store_then_fixed(tmp: Path, bad_store: Path, caplog: pytest.LogCaptureFixture,
                          turns: int = 3) -> None:
    """Records made while the store is broken are kept and land once the store is fixed."""
    spool = tmp / "spool"
    gs.configure(store=str(bad_store), spool_dir=str(spool), flush_interval=0.05,
                 shutdown_timeout=0.3)
    for index in range(turns):
        run_turn(0, index)  # user code unaffected: returns normally
    result = gs.flush(timeout=0.3)
    assert not result.ok and result.pending == turns * 2, result  # sessions + traces pending
    errors = _store_errors(caplog)
    assert len(errors) == 1, errors
    assert str(bad_store) in errors[0]
    good = tmp / "good.db"
    gs.configure(store=str(good), spool_dir=str(spool), flush_interval=0.05)
    flush_until_ok(timeout=20)
    assert gs.stats()["failed"] == 0 and gs.stats()["dropped"] == 0
    gs.shutdown(timeout=5)
    audit = audit_store(good, produced={0: turns})
    assert audit.problems == [] and audit.duplicates == 0, audit.problems
    assert audit.records == turns * 5
    assert not list(spool.glob("*.json")), "the spool still holds records"


@DISK
@given(garbage=st.binary(min_size=64, max_size=8192).filter(
    lambda b: not b.startswith(b"SQLite format 3")))
def test_corrupt_store_file_keeps_records_until_the_path_is_fixed(
        garbage: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    _internal._once_keys.clear()
    tmp = Path(tempfile.mkdtemp(prefix="gs-corrupt-"))
    try:
        bad = tmp / "corrupt.db"
        bad.write_bytes(garbage)
        with caplog.at_level(logging.ERROR, logger="galileo_sessions"):
            _bad_store_then_fixed(tmp, bad, caplog)
        assert bad.read_bytes() == garbage  # the user's file is never overwritten
    finally:
        gs.shutdown(timeout=1)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("kind", ["parent is a file", "store is a directory"])
def test_unwritable_store_keeps_records_until_the_path_is_fixed(
        tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    if kind == "parent is a file":
        (tmp_path / "file").write_text("not a directory")
        bad = tmp_path / "file" / "store.db"
    else:
        bad = tmp_path / "dir.db"
        bad.mkdir()
    with caplog.at_level(logging.ERROR, logger="galileo_sessions"):
        _bad_store_then_fixed(tmp_path, bad, caplog)


READ_ONLY_CHILD = r"""
import json, os, sys
os.setgid(65534); os.setuid(65534)
import galileo_sessions as gs
store, spool = sys.argv[1], sys.argv[2]
gs.configure(store=store, spool_dir=spool, flush_interval=0.05, shutdown_timeout=0.3)

@gs.trace
def turn(x):
    return x * 2

with gs.session("s", external_id="ro"):
    results = [turn(i) for i in range(3)]
result = gs.flush(timeout=0.3)
print(json.dumps({"results": results, "ok": result.ok, "pending": result.pending}))
"""


def test_read_only_store_as_an_unprivileged_user(tmp_path: Path) -> None:
    """A store file the process may not write (as uid 65534; skipped where setuid is not
    allowed): the calls return normally, records stay pending, one error is logged."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the 'nobody' user")
    base = tmp_path / "ro"
    base.mkdir()
    store = base / "store.db"
    gs.configure(store=str(store), spool_dir=str(tmp_path / "spool0"))
    with gs.session("warm-up"):
        pass
    assert gs.flush(5).ok
    gs.shutdown(5)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o777)
    os.chmod(spool, 0o777)
    for path in (tmp_path, base):
        os.chmod(path, 0o755)
    for path in base.iterdir():
        os.chmod(path, 0o644)  # readable, not writable, by nobody
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GALILEO_", "PYTEST_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", READ_ONLY_CHILD, str(store), str(spool)],
                          env=env, capture_output=True, text=True, timeout=60, check=False,
                          cwd=tmp_path)
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("setuid is not permitted here")
    if proc.returncode != 0 and ("ModuleNotFoundError" in proc.stderr
                                 or "PermissionError" in proc.stderr):
        pytest.skip("the interpreter or the library is not readable by 'nobody' here")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["results"] == [0, 2, 4]
    assert not out["ok"] and out["pending"] > 0
    assert proc.stderr.count("cannot write the local store") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        gs.shutdown(timeout=1)
        if subprocess.run(["umount", str(mount)], capture_output=True,
                          check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


@gs.trace
def padded_turn(index: int, padding: str) -> int:
    echo(padding)
    return index


def test_full_disk_for_store_and_spool(tiny_disk: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """Store and spool on a full 256 KiB disk: every call returns normally; records the disk
    cannot hold are dropped, counted and logged once; the books balance."""
    gs.configure(store=str(tiny_disk / "store.db"), spool_dir=str(tiny_disk / "spool"),
                 flush_interval=0.02, max_queue_bytes=150_000, shutdown_timeout=0.5)
    padding = "p" * 3000
    with caplog.at_level(logging.WARNING, logger="galileo_sessions"):
        for index in range(400):
            with gs.session("full", external_id="disk"):
                assert padded_turn(index, padding) == index
        gs.flush(timeout=1.0)
        runtime = gs._runtime.current
        assert runtime is not None and runtime.pipeline is not None
        gs.shutdown(timeout=0.5)
    final = runtime.pipeline.stats.snapshot()
    print(f"full disk (256 KiB tmpfs): {final}")
    assert final["dropped"] > 0, final
    assert final["enqueued"] == 800  # 400 sessions + 400 traces
    # The books balance: every record is sent, failed, dropped, or still pending (on disk).
    assert final["enqueued"] == final["sent"] + final["failed"] + final["dropped"] \
        + final["pending"], final
    messages = [r.getMessage() for r in caplog.records]
    drops = [m for m in messages if "dropping records" in m]
    assert len(drops) == 1, drops
    store_errors = [m for m in messages if "cannot write the local store" in m]
    assert len(store_errors) <= 2, store_errors  # one per kind of error (open, disk full)
    assert "Traceback" not in "\n".join(messages)
    # What the spool accepted are whole files (no partial write left behind, no temp files).
    spool = tiny_disk / "spool"
    if spool.is_dir():
        assert not list(spool.glob(".*.tmp")), list(spool.iterdir())
        for path in spool.glob("*.json"):
            assert json.loads(path.read_bytes())["v"] == 1


# --- a corrupt spool ---------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_corrupt_spool_files_are_set_aside_and_the_good_ones_replayed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool"
    # Good files, as a process whose store was broken left them at exit.
    (tmp_path / "file").write_text("x")
    gs.configure(store=str(tmp_path / "file" / "store.db"), spool_dir=str(spool),
                 flush_interval=0.05, shutdown_timeout=0.3)
    for index in range(4):
        run_turn(0, index)
    gs.shutdown(timeout=0.3)
    good = sorted(spool.glob("*.json"))
    assert good
    dead = _dead_pid()
    for path in good:  # as if written by a process that has died
        path.rename(path.with_name(f"{dead}-{path.name.split('-', 1)[1]}"))
    valid_op = json.loads(sorted(spool.glob("*.json"))[0].read_bytes())["ops"][0]
    bad = {
        "garbage": os.urandom(300),
        "truncated": json.dumps({"v": 1, "ops": [valid_op]}).encode()[:-7],
        "wrong-version": json.dumps({"v": 99, "ops": [valid_op]}).encode(),
        "not-an-object": b"[1, 2, 3]",
        "empty": b"",
        "bad-op": json.dumps({"v": 1, "ops": [{"v": 1, "kind": "nonsense"}]}).encode(),
    }
    for index, (_name, data) in enumerate(bad.items()):
        (spool / f"{dead}-{900000000000 + index:012d}-o.json").write_bytes(data)
    (spool / f"{dead}-999999999999-o.json").mkdir()  # a directory where a file should be
    (spool / "not-a-spool-file.json").write_bytes(b"{}")
    caplog.clear()
    store = tmp_path / "good.db"
    with caplog.at_level(logging.WARNING, logger="galileo_sessions"):
        gs.configure(store=str(store), spool_dir=str(spool), flush_interval=0.05)
        gs.flush(timeout=10)
        flush_until_ok(timeout=20)
    unreadable = [r for r in caplog.records if "unreadable spool file" in r.getMessage()]
    assert len(unreadable) == 1, [r.getMessage() for r in caplog.records]
    gs.shutdown(timeout=5)
    audit = audit_store(store, produced={0: 4})
    assert audit.problems == [] and audit.duplicates == 0, audit.problems
    assert audit.records == 20
    # The unreadable files are kept aside (never replayed again), not deleted.
    assert len(list(spool.glob("*.corrupt"))) == len(bad)
    assert not [p for p in spool.glob("*.json") if p.is_file() and p.name[0].isdigit()]


def test_spool_write_never_leaves_a_partial_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A short write (disk nearly full) is completed; a failing write leaves no temp file."""
    spool = Spool(tmp_path / "spool", 10**9)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))
    path = spool.write([{"v": 1, "kind": "x", "payload": "y" * 100}], overflow=True)
    assert path is not None
    assert json.loads(path.read_bytes())["ops"][0]["payload"] == "y" * 100

    def full(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        spool.write([{"v": 1}], overflow=True)
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == [path.name]
