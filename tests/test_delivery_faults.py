"""Delivery through faults the dev server injects, and through the server going away.

Transient trouble (5xx, 429 + Retry-After, read timeouts, refused and dropped connections, a
restart in the middle of a run) must end with every record stored exactly once; permanent
refusals (401, 422, 404) must be counted as failed, logged once, never retried in a storm and
never raised into fire-and-forget code; the API key must never leak anywhere.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _delivery_helpers import (  # noqa: F401 - ``server`` is a fixture
    API_KEY,
    Expected,
    assert_store_matches,
    clear_faults,
    configure_for,
    flush_until_ok,
    read_store,
    run_workload,
    server,
    server_requests,
    server_stats,
    spool_files,
    status_count,
    wait_for,
    write_requests,
)

import galileo_sessions as gs
from galileo_sessions import _internal
from galileo_sessions.server import ServerThread

MODES = ["fire_and_forget", "reliable"]


@pytest.fixture(autouse=True)
def _fresh_log_once() -> Iterator[None]:
    """``log_once`` is per process; each test here checks its own "logged once" lines."""
    _internal._once_keys.clear()
    yield
    _internal._once_keys.clear()


def _deliver_and_check(srv: ServerThread, expected: Expected) -> None:
    clear_faults(srv)
    flush_until_ok(timeout=60)
    wait_for(lambda: len(read_store(srv.store.path).spans) >= len(expected.spans),
             timeout=30, what="late spans")
    flush_until_ok(timeout=30)
    assert_store_matches(read_store(srv.store.path), expected)
    assert status_count(srv, 422) == 0
    stats = gs.stats()
    assert stats["failed"] == stats["dropped"] == 0, stats


# --- transient faults: everything arrives exactly once ---------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_5xx_burst_then_recovery(server: ServerThread, tmp_path: Path, mode: str) -> None:
    configure_for(server, tmp_path, mode=mode)
    from _delivery_helpers import set_faults

    set_faults(server, status=503, rate=1.0, count=6)
    expected = Expected()
    run_workload(expected, users=2, turns=2)
    # All six injected failures were spent, and the library got through them by itself.
    wait_for(lambda: server_stats(server)["faults"]["status_injected"] == 6, what="burst")
    _deliver_and_check(server, expected)
    assert gs.stats()["retried"] >= 1


@pytest.mark.parametrize("mode", MODES)
def test_flaky_5xx_half_the_time(server: ServerThread, tmp_path: Path, mode: str) -> None:
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path, mode=mode)
    set_faults(server, status=500, rate=0.5, seed=1234)
    expected = Expected()
    run_workload(expected, users=2, turns=3)
    flush_until_ok(timeout=60)  # with the faults still on
    assert server_stats(server)["faults"]["status_injected"] > 0
    _deliver_and_check(server, expected)


@pytest.mark.parametrize("mode", MODES)
def test_dropped_connections(server: ServerThread, tmp_path: Path, mode: str) -> None:
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path, mode=mode)
    set_faults(server, drop_rate=0.3, seed=99)
    expected = Expected()
    run_workload(expected, users=2, turns=3)
    flush_until_ok(timeout=60)
    assert server_stats(server)["faults"]["dropped"] > 0
    _deliver_and_check(server, expected)


@pytest.mark.parametrize("mode", MODES)
def test_read_timeouts_retry_without_duplicates(server: ServerThread, tmp_path: Path,
                                                mode: str) -> None:
    """The server stores a request the client gave up on; the retry must not duplicate it."""
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path, mode=mode, read_timeout=0.3)
    gs.flush(timeout=10)
    expected = Expected()
    # Resolve the project first, then make every write slower than the read timeout.
    with gs.session("warmup", external_id="warm") as s:
        expected.sessions.append((s, None))
    assert gs.flush(timeout=10).ok
    set_faults(server, latency_ms=600, paths=["/sessions", "/traces", "/spans"])
    done = threading.Event()

    def later() -> None:
        # Let a few writes time out (and be stored anyway), then heal the server.
        wait_for(lambda: server_stats(server)["faults"]["delayed"] >= 3, timeout=30,
                 what="timed-out writes")
        time.sleep(0.3)
        clear_faults(server)
        done.set()

    healer = threading.Thread(target=later, daemon=True)
    healer.start()
    run_workload(expected, users=2, turns=2, late_spans=False)
    healer.join(40)
    assert done.is_set()
    _deliver_and_check(server, expected)
    assert gs.stats()["retried"] >= 1
    # The slow requests did reach the store: those retries were absorbed by the ids.
    assert server_stats(server)["faults"]["delayed"] >= 3


def test_429_retry_after_is_honoured_not_a_hot_loop(server: ServerThread,
                                                     tmp_path: Path) -> None:
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path)
    assert gs.flush(timeout=10).ok  # nothing yet; the worker is idle
    set_faults(server, status=429, rate=1.0, retry_after=1.0)
    expected = Expected()
    run_workload(expected, users=1, turns=2, late_spans=False)
    time.sleep(3.2)  # three Retry-After periods: ~4 attempts, not hundreds
    writes = [r for r in server_requests(server) if r["status"] == 429]
    assert 2 <= len(writes) <= 6, len(writes)
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(writes)]
    assert all(gap >= 0.7 for gap in gaps), gaps
    _deliver_and_check(server, expected)


def test_429_retry_after_in_reliable_mode(server: ServerThread, tmp_path: Path) -> None:
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path, mode="reliable", reliable_timeout=20)
    with gs.session("warm"):
        pass
    set_faults(server, status=429, rate=1.0, retry_after=0.5, count=2)
    started = time.monotonic()
    with gs.session("waits") as s:
        pass
    waited = time.monotonic() - started
    assert s.id is not None
    assert 0.8 <= waited < 10, waited
    assert status_count(server, 429) == 2


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused_then_server_returns(server: ServerThread, tmp_path: Path,
                                                mode: str) -> None:
    configure_for(server, tmp_path, mode=mode, reliable_timeout=30)
    server.stop()
    expected = Expected()
    if mode == "reliable":
        # The caller blocks through the outage and succeeds once the server is back.
        threading.Timer(1.0, server.start).start()
        started = time.monotonic()
        run_workload(expected, users=2, turns=2)
        assert time.monotonic() - started >= 0.9
    else:
        started = time.monotonic()
        run_workload(expected, users=2, turns=2)
        assert time.monotonic() - started < 5
        result = gs.flush(timeout=1)
        assert not result.ok and result.pending > 0  # a dead server is never "success"
        assert result.last_error is not None
        server.start()
    _deliver_and_check(server, expected)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_server_killed_mid_run_and_restarted(server: ServerThread, tmp_path: Path,
                                             mode: str) -> None:
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path, mode=mode, reliable_timeout=30)
    set_faults(server, latency_ms=15)
    expected = Expected()
    errors: list[BaseException] = []

    def program() -> None:
        try:
            for _ in range(4):
                run_workload(expected, users=3, turns=2, late_spans=False)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=program)
    worker.start()
    wait_for(lambda: len(read_store(server.store.path).traces) >= 4, what="first traces")
    server.stop()
    time.sleep(0.8)
    server.start()
    worker.join(60)
    assert not worker.is_alive() and not errors, errors
    _deliver_and_check(server, expected)
    assert len(expected.traces) == 24


def test_reliable_gives_delivery_error_after_timeout_when_server_stays_down(
        server: ServerThread, tmp_path: Path) -> None:
    from _delivery_helpers import set_faults

    configure_for(server, tmp_path, mode="reliable", reliable_timeout=1.0)
    with gs.session("ok"):
        pass
    set_faults(server, status=503, rate=1.0)

    @gs.trace
    def step() -> str:
        return "x"

    started = time.monotonic()
    with pytest.raises(gs.DeliveryError) as info:
        step()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 4.0, elapsed
    assert info.value.status_code == 503
    assert info.value.server_message is not None
    assert "Injected fault" in info.value.server_message
    assert len(spool_files(tmp_path)) == 1  # the record stays for the next start

    server.stop()
    started = time.monotonic()
    with pytest.raises(gs.DeliveryError) as refused:
        with gs.session("down"):
            pass
    assert 1.0 <= time.monotonic() - started < 5.0
    assert refused.value.status_code is None
    assert "Connect" in str(refused.value) or "refused" in str(refused.value).lower()
    assert API_KEY not in str(info.value) + repr(info.value) + str(refused.value)

    # The caller saw the failure; later sessions of the chain do not wait for its id.
    server.start()
    clear_faults(server)
    started = time.monotonic()
    with gs.session("down") as after:
        pass
    assert time.monotonic() - started < 0.9
    assert after.id is not None
    # Both failed records wait in the spool for the next start (a new process once this one
    # has ended: a live process's files are never taken by another; test_crash_replay.py
    # covers that replay).
    gs.shutdown(timeout=2)
    held = [json.loads(p.read_bytes())["ops"][0] for p in spool_files(tmp_path)]
    assert sorted(op["kind"] for op in held) == ["session", "trace"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in spool_files(tmp_path))


# --- permanent refusals ----------------------------------------------------------------------

def _scan_for_key(caplog: pytest.LogCaptureFixture, tmp_path: Path,
                  *extra: object) -> None:
    texts = [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info[1]) for r in caplog.records if r.exc_info and r.exc_info[1]]
    texts += [str(x) for x in extra] + [repr(x) for x in extra]
    from galileo_sessions import _runtime

    if _runtime.current is not None:
        texts.append(repr(_runtime.current.settings))
        pipeline = _runtime.current.pipeline
        if pipeline is not None:
            texts.append(repr(pipeline.exporter))
            texts.append(repr(getattr(pipeline.exporter, "_client", None)))
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".db" and "-wal" not in path.name:
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    for text in texts:
        assert API_KEY not in text


def _failure_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("galileo_sessions") and r.levelno >= logging.ERROR]


def test_wrong_api_key_fails_fast_logged_once(server: ServerThread, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")
    configure_for(server, tmp_path, api_key="not-the-key-" + API_KEY[::-1])
    expected = Expected()
    run_workload(expected, users=2, turns=2, late_spans=False)  # no exception here
    result = gs.flush(timeout=10)
    assert not result.ok
    assert result.failed == 8  # 4 sessions + 4 traces
    assert result.pending == 0
    assert "401" in (result.last_error or "")
    lines = _failure_lines(caplog)
    assert len(lines) == 1, lines
    assert "401" in lines[0]
    total = server_stats(server)["requests"]["by_status"].get("401", 0)
    assert total <= 10, f"{total} requests for 8 records: a retry storm"
    time.sleep(0.5)
    assert server_stats(server)["requests"]["by_status"].get("401", 0) == total  # no retries
    assert read_store(server.store.path).traces == {}
    _scan_for_key(caplog, tmp_path, result)


def test_wrong_api_key_reliable_raises_delivery_error(server: ServerThread, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="galileo_sessions")
    wrong = "wrong-" + API_KEY
    configure_for(server, tmp_path, api_key=wrong, mode="reliable", reliable_timeout=5)
    started = time.monotonic()
    with pytest.raises(gs.DeliveryError) as info:
        with gs.session("s"):
            pass
    assert time.monotonic() - started < 3  # not retried until the timeout
    assert info.value.status_code == 401
    texts = [str(info.value), repr(info.value), str(info.value.server_message)]
    for text in texts:
        assert wrong not in text
    _scan_for_key(caplog, tmp_path, info.value)
    for path in tmp_path.rglob("*.json"):
        assert wrong not in path.read_text()


def test_invalid_body_422_counted_failed_not_retried(server: ServerThread, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")

    def break_it(record: dict[str, object]) -> dict[str, object]:
        if record.get("type") == "trace":
            record["created_at"] = "yesterday, roughly"
        return record

    configure_for(server, tmp_path, redact=break_it)

    @gs.trace
    def step(i: int) -> int:
        return i

    with gs.session("bad"):
        for i in range(5):
            step(i)
    result = gs.flush(timeout=10)
    assert result.failed == 5 and result.sent == 1 and result.pending == 0, result
    assert "422" in (result.last_error or "")
    lines = _failure_lines(caplog)
    assert len(lines) == 1, lines
    assert "422" in lines[0] and "created_at" in lines[0]
    assert status_count(server, 422) <= 5
    time.sleep(0.3)
    assert status_count(server, 422) <= 5
    _scan_for_key(caplog, tmp_path, result)


def test_unknown_project_id(server: ServerThread, tmp_path: Path,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")
    configure_for(server, tmp_path, project_id="00000000-0000-4000-8000-00000000beef",
                  log_stream_id="00000000-0000-4000-8000-00000000cafe")
    expected = Expected()
    run_workload(expected, users=1, turns=3, late_spans=False)
    result = gs.flush(timeout=10)
    assert result.failed == 6 and result.pending == 0, result
    assert "404" in (result.last_error or "")
    lines = _failure_lines(caplog)
    assert len(lines) == 1 and "404" in lines[0], lines
    assert server_stats(server)["requests"]["by_status"].get("404", 0) <= 6
    _scan_for_key(caplog, tmp_path, result)


def test_reliable_422_raises_at_once_with_server_message(server: ServerThread,
                                                         tmp_path: Path) -> None:
    def break_it(record: dict[str, object]) -> dict[str, object]:
        record["metrics"] = {"duration_ns": "slow"}
        return record

    configure_for(server, tmp_path, mode="reliable", redact=break_it, reliable_timeout=10)

    @gs.trace
    def step() -> int:
        return 1

    started = time.monotonic()
    with pytest.raises(gs.DeliveryError) as info:
        step()
    assert time.monotonic() - started < 3
    assert info.value.status_code == 422
    assert info.value.server_message and "duration_ns" in info.value.server_message
