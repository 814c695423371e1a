"""Session chaining, resuming and chain stores (api.md section 2)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import galileo_sessions as gs
from galileo_sessions._store import Store
from galileo_sessions.testing import Capture


def ID(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def bodies(cap: Capture) -> list[dict[str, Any]]:
    return [r["body"] for r in cap.requests if r["route"] == "sessions"]


def links(cap: Capture) -> list[tuple[str | None, str | None]]:
    """(name, previous session's name) for every created session."""
    by_id = {s["id"]: s["name"] for s in cap.sessions}
    return [(s["name"], by_id.get(s["previous_session_id"]) if s["previous_session_id"]
             else None) for s in cap.sessions]


def test_explicit_chain_string_links_different_names(gs_capture: Capture) -> None:
    with gs.session("a", chain="conv-1"):
        pass
    with gs.session("b", chain="conv-1", external_id="ext-b"):
        pass
    with gs.session("c", chain="conv-2"):
        pass
    assert links(gs_capture) == [("a", None), ("b", "a"), ("c", None)]


def test_chain_callable_receives_arguments(gs_capture: Capture) -> None:
    @gs.session("turn", chain=lambda user, msg: f"user:{user}")
    def turn(user: str, msg: str) -> str:
        current = gs.current_session()
        assert current is not None
        return f"{user}:{msg}:{current.name}"

    assert turn("alice", "hi") == "alice:hi:turn"
    turn("bob", msg="hi")
    turn("alice", "again")
    ids = [s["id"] for s in gs_capture.sessions]
    prevs = [s["previous_session_id"] for s in gs_capture.sessions]
    assert prevs == [None, None, ids[0]]


def test_external_id_is_the_chain_key_before_name(gs_capture: Capture) -> None:
    with gs.session("x", external_id="u1"):
        pass
    with gs.session("y", external_id="u2"):
        pass
    with gs.session("z", external_id="u1"):
        pass
    with gs.session("x"):  # name "x" is a different chain from external id "u1"
        pass
    assert links(gs_capture) == [("x", None), ("y", None), ("z", "x"), ("x", None)]


def test_name_is_the_chain_key_without_external_id(gs_capture: Capture) -> None:
    for name in ["support", "billing", "support", "support"]:
        with gs.session(name):
            pass
    ids = [s["id"] for s in gs_capture.sessions]
    assert [s["previous_session_id"] for s in gs_capture.sessions] == \
        [None, None, ids[0], ids[2]]


def test_function_qualname_is_the_chain_key_last(gs_capture: Capture) -> None:
    @gs.session()
    def first() -> None: ...

    @gs.session()
    def second() -> None: ...

    first()
    second()
    first()
    ids = [s["id"] for s in gs_capture.sessions]
    assert [s["name"] for s in gs_capture.sessions] == [None, None, None]
    assert [s["previous_session_id"] for s in gs_capture.sessions] == [None, None, ids[0]]


def test_unnamed_context_sessions_are_not_linked(gs_capture: Capture) -> None:
    for _ in range(2):
        with gs.session():
            pass
    assert [s["previous_session_id"] for s in gs_capture.sessions] == [None, None]


def test_chain_false_never_links_but_does_not_break_chain(gs_capture: Capture) -> None:
    with gs.session("n"):
        pass
    with gs.session("n", chain=False) as unlinked:
        pass
    with gs.session("n"):
        pass
    assert unlinked.previous_session_id is None
    ids = [s["id"] for s in gs_capture.sessions]
    assert [s["previous_session_id"] for s in gs_capture.sessions] == [None, None, ids[0]]


def test_explicit_previous_session_id_wins(gs_capture: Capture) -> None:
    explicit = "12345678-1234-4234-8234-123456789abc"
    with gs.session("n") as first:
        pass
    with gs.session("n", previous_session_id=explicit) as second:
        pass
    with gs.session("n") as third:
        pass
    assert second.previous_session_id == explicit
    assert [b["previous_session_id"] for b in bodies(gs_capture)] == \
        [None, explicit, second.id]
    assert third.previous_session_id == second.id != first.id


def test_per_call_callables_for_name_external_id_metadata(gs_capture: Capture) -> None:
    calls: list[tuple[Any, ...]] = []

    def name(user: str, msg: str, *, lang: str = "en") -> str:
        calls.append((user, msg, lang))
        return f"turn-{lang}"

    @gs.session(name, external_id=lambda user, msg, **kw: user,
                metadata=lambda user, msg, **kw: {"len": len(msg), "lang": kw.get("lang")})
    def handle(user: str, msg: str, *, lang: str = "en") -> str:
        return msg.upper()

    assert handle("u1", "hello") == "HELLO"
    assert handle("u2", "hey", lang="fr") == "HEY"
    assert calls == [("u1", "hello", "en"), ("u2", "hey", "fr")]
    assert [(b["name"], b["external_id"], b["user_metadata"]) for b in bodies(gs_capture)] == [
        ("turn-en", "u1", {"len": "5"}),  # None metadata values are left out
        ("turn-fr", "u2", {"len": "3", "lang": "fr"}),
    ]


async def test_per_call_callables_on_coroutines(gs_capture: Capture) -> None:
    @gs.session("turn", external_id=lambda user_id, msg: user_id)
    async def handle(user_id: str, msg: str) -> str:
        await asyncio.sleep(0)
        s = gs.current_session()
        assert s is not None and s.external_id == user_id
        return msg

    assert await handle("u7", "x") == "x"
    assert await handle("u7", "y") == "y"
    first, second = gs_capture.sessions
    assert (first["external_id"], second["external_id"]) == ("u7", "u7")
    assert second["previous_session_id"] == first["id"]


def test_metadata_values_stringified(gs_capture: Capture) -> None:
    class Tier:
        def __str__(self) -> str:
            return "gold"

    with gs.session("m", metadata={"n": 1, "f": 1.5, "b": True, "t": Tier(), 7: "seven",
                                   "s": "text"}) as s:
        pass
    expected = {"n": "1", "f": "1.5", "b": "True", "t": "gold", "7": "seven", "s": "text"}
    assert bodies(gs_capture)[0]["user_metadata"] == expected
    assert s.metadata == expected


def test_decorator_opens_a_new_session_per_call(gs_capture: Capture) -> None:
    seen: list[gs.SessionHandle | None] = []

    @gs.session("turn")
    @gs.trace
    def turn(i: int) -> int:
        seen.append(gs.current_session())
        return i

    assert [turn(i) for i in range(3)] == [0, 1, 2]
    assert len({id(s) for s in seen}) == 3
    assert len(gs_capture.sessions) == 3
    assert [gs_capture.session_of(t) for t in gs_capture.traces] == \
        [s["id"] for s in gs_capture.sessions]
    assert gs.current_session() is None


def test_decorator_leaves_session_on_exception(gs_capture: Capture) -> None:
    @gs.session("turn")
    def turn() -> None:
        raise LookupError("x")

    with pytest.raises(LookupError):
        turn()
    assert gs.current_session() is None
    assert len(gs_capture.sessions) == 1


def test_session_decorator_refuses_generators() -> None:
    def gen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        gs.session("g")(gen)


def _run_concurrently(fn: Any, n: int) -> None:
    barrier = threading.Barrier(n)
    threads = [threading.Thread(target=fn, args=(barrier, i)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "galileo_sessions" and r.levelno == logging.WARNING]


def test_concurrent_shared_chain_logs_exactly_one_warning(
        gs_capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")

    @gs.session("shared")
    def turn(barrier: threading.Barrier, i: int) -> None:
        barrier.wait(5)
        barrier.wait(5)  # everyone is inside the session at once

    for _ in range(2):
        _run_concurrently(turn, 4)
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "external_id" in warnings[0] and "'shared'" in warnings[0]
    assert len(gs_capture.sessions) == 8


@pytest.mark.parametrize("options", [{"external_id": lambda b, i: f"user-{i}"},
                                     {"chain": lambda b, i: f"user-{i}"}])
def test_concurrent_keyed_chain_does_not_warn(
        gs_capture: Capture, caplog: pytest.LogCaptureFixture, options: dict[str, Any]) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")

    @gs.session("keyed", **options)
    def turn(barrier: threading.Barrier, i: int) -> None:
        barrier.wait(5)
        barrier.wait(5)

    _run_concurrently(turn, 4)
    assert _warnings(caplog) == []


def test_sequential_shared_chain_does_not_warn(
        gs_capture: Capture, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="galileo_sessions")

    @gs.session("serial")
    def turn() -> None: ...

    for _ in range(3):
        turn()
    assert _warnings(caplog) == []


def test_every_new_scope_warns_once(gs_capture: Capture,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """The warning belongs to each decorator, even when an old one was garbage-collected
    (and a new one may then sit at the same address)."""
    import gc

    caplog.set_level(logging.WARNING, logger="galileo_sessions")

    def body(barrier: threading.Barrier, i: int) -> None:
        barrier.wait(5)
        barrier.wait(5)

    for round_ in range(6):
        scope = gs.session("shared")
        _run_concurrently(scope(body), 3)
        del scope
        gc.collect()
        assert len(_warnings(caplog)) == round_ + 1


def test_concurrent_sessions_on_one_chain_form_a_chain_not_a_fork(
        gs_capture: Capture) -> None:
    @gs.session("shared", chain="one")
    def turn(barrier: threading.Barrier, i: int) -> None:
        barrier.wait(5)

    _run_concurrently(turn, 6)
    prevs = [s["previous_session_id"] for s in gs_capture.sessions]
    ids = {s["id"] for s in gs_capture.sessions}
    assert prevs.count(None) == 1
    assert len(set(prevs)) == 6
    assert {p for p in prevs if p} < ids


# -- resume ----------------------------------------------------------------------------------

def test_resume_reuses_the_known_session(gs_capture: Capture) -> None:
    @gs.trace
    def work(i: int) -> int:
        return i

    with gs.session("conv", external_id="user-1", resume=True) as first:
        work(1)
    with gs.session("conv", external_id="user-1", resume=True) as second:
        work(2)
    with gs.session("conv", external_id="user-2", resume=True) as other:
        work(3)
    assert second is first
    assert second.id == first.id != other.id
    assert len(gs_capture.sessions) == 2
    assert [gs_capture.session_of(t) for t in gs_capture.traces] == \
        [first.id, first.id, other.id]


def test_resume_without_external_id_creates(gs_capture: Capture) -> None:
    with gs.session("conv", resume=True) as a:
        pass
    with gs.session("conv", resume=True) as b:
        pass
    assert a.id != b.id
    assert b.previous_session_id == a.id


def test_resume_searches_server_when_unknown_locally(gs_capture: Capture) -> None:
    with gs.session("conv", external_id="user-9", chain="process-1"):
        pass
    with gs.session("conv", external_id="user-9", chain="process-1"):
        pass
    newest = gs_capture.sessions[-1]["id"]
    # a chain this process has never seen: the session is found by external id
    with gs.session("conv", external_id="user-9", chain="process-2", resume=True) as s:
        pass
    assert s.id == newest
    routes = [r["route"] for r in gs_capture.requests]
    assert routes == ["sessions", "sessions", "sessions/search"]
    search = gs_capture.requests[-1]["body"]
    assert search["filters"][0]["column_id"] == "external_id"
    assert search["filters"][0]["value"] == "user-9"
    # and once known, resuming again does not search again
    with gs.session("conv", external_id="user-9", chain="process-2", resume=True) as again:
        pass
    assert again.id == newest
    assert len(gs_capture.requests) == 3


def test_resume_creates_when_nothing_found(gs_capture: Capture) -> None:
    with gs.session("conv", external_id="nobody", resume=True) as s:
        pass
    assert [r["route"] for r in gs_capture.requests] == ["sessions/search", "sessions"]
    assert s.id == gs_capture.sessions[0]["id"]


def test_resume_reliable_mode() -> None:
    with gs.testing.capture(mode="reliable") as cap:
        with gs.session("c", external_id="e", chain="k1"):
            pass
        with gs.session("c", external_id="e", chain="k2", resume=True) as s:
            assert s.id == cap.sessions[0]["id"]
        assert len(cap.sessions) == 1
        assert all(r["body"].get("reliable") is True for r in cap.requests
                   if r["route"] == "sessions")


# -- chain stores on the real local store ------------------------------------------------------

def _configure(tmp_path: Path, chain_store: Any) -> None:
    gs.configure(store=str(tmp_path / "x.db"), chain_store=chain_store)


def _session_rows(tmp_path: Path) -> dict[str, dict[str, Any]]:
    store = Store(tmp_path / "x.db")
    try:
        return {s["id"]: s for s in store.list_sessions()}
    finally:
        store.close()


def test_sqlite_chain_store_shared_by_two_store_objects(tmp_path: Path) -> None:
    chains = tmp_path / "chains.db"
    first_store = gs.SQLiteChainStore(chains)
    _configure(tmp_path, first_store)
    with gs.session("conv", external_id="u1") as first:
        pass
    assert gs.flush(5).ok
    second_store = gs.SQLiteChainStore(chains)
    _configure(tmp_path, second_store)
    with gs.session("conv", external_id="u1") as second:
        pass
    with gs.session("conv", external_id="u2") as unrelated:
        pass
    assert gs.flush(5).ok
    assert second.previous_session_id == first.id
    assert unrelated.previous_session_id is None
    rows = _session_rows(tmp_path)
    assert rows[second.id]["previous_session_id"] == first.id
    assert rows[unrelated.id]["previous_session_id"] is None
    # the first object sees what the second wrote
    latest = first_store.get("u1")
    assert latest is not None and latest.id == second.id
    first_store.close()
    second_store.close()


def test_sqlite_chain_store_continues_chain_in_a_new_process(tmp_path: Path) -> None:
    chains = tmp_path / "chains.db"
    store = gs.SQLiteChainStore(chains)
    _configure(tmp_path, store)
    handles = []
    for _ in range(2):
        with gs.session("conv", external_id="user-42") as s:
            handles.append(s)

            @gs.trace
            def turn() -> str:
                return "ok"

            turn()
    result = gs.flush(5)
    assert result.ok and result.sent == 4
    gs.shutdown()
    store.close()
    script = textwrap.dedent(f"""
        import json
        import galileo_sessions as gs
        gs.configure(store={str(tmp_path / "x.db")!r},
                     chain_store=gs.SQLiteChainStore({str(chains)!r}))
        with gs.session("conv", external_id="user-42") as s:
            pass
        result = gs.flush(5)
        print(json.dumps({{"id": s.id, "previous": s.previous_session_id, "ok": result.ok}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    assert child["ok"] is True
    assert handles[1].previous_session_id == handles[0].id
    assert child["previous"] == handles[1].id
    rows = _session_rows(tmp_path)
    assert rows[child["id"]]["previous_session_id"] == handles[1].id
    assert len(rows) == 3


def test_resume_finds_session_by_external_id_in_a_fresh_chain_store(tmp_path: Path) -> None:
    _configure(tmp_path, gs.InMemoryChainStore())
    with gs.session("conv", external_id="user-5") as first:
        pass
    with gs.session("conv", external_id="user-5") as second:
        pass
    assert gs.flush(5).ok
    _configure(tmp_path, gs.InMemoryChainStore())  # like a restarted process
    with gs.session("conv", external_id="user-5", resume=True) as resumed:
        @gs.trace
        def turn() -> str:
            return "more"

        turn()
    assert gs.flush(5).ok
    assert resumed.id == second.id != first.id
    rows = _session_rows(tmp_path)
    assert len(rows) == 2
    assert rows[second.id]["num_traces"] == 1


def test_chain_store_protocol_custom_store(gs_capture: Capture) -> None:
    class DictStore:
        def __init__(self) -> None:
            self.data: dict[str, gs.SessionHandle] = {}

        def get(self, key: str) -> gs.SessionHandle | None:
            return self.data.get(key)

        def set(self, key: str, handle: gs.SessionHandle) -> None:
            self.data[key] = handle

    store = DictStore()
    assert isinstance(store, gs.ChainStore)
    with gs.testing.capture(chain_store=store) as cap:
        with gs.session("a") as a:
            pass
        with gs.session("a") as b:
            pass
        assert store.data["a"] is b
        assert cap.sessions[1]["previous_session_id"] == a.id
