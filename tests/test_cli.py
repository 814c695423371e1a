"""The galileo-sessions command over a real store file, checked by what it prints."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from galileo_sessions._store import Store
from galileo_sessions._store.render import one_line, render_trace, session_chains
from galileo_sessions.cli import main


def uid() -> str:
    return str(uuid.uuid4())


def trace(minute: int, *, failing_tool: bool = False) -> dict[str, Any]:
    return {
        "type": "trace", "id": uid(), "name": f"turn-{minute}",
        "input": "What is the weather like in Paris today? " * 3,
        "output": "Sunny, 21 degrees.", "created_at": f"2026-03-04T10:{minute:02d}:00Z",
        "metrics": {"duration_ns": 1_500_000_000},
        "spans": [
            {"type": "workflow", "id": uid(), "name": "plan", "input": "weather Paris",
             "created_at": f"2026-03-04T10:{minute:02d}:01Z",
             "metrics": {"duration_ns": 900_000_000},
             "spans": [
                 {"type": "llm", "id": uid(), "name": "chat", "model": "gpt-4o",
                  "created_at": f"2026-03-04T10:{minute:02d}:02Z",
                  "input": [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Weather in Paris?"}],
                  "output": {"role": "assistant", "content": "Let me check."},
                  "metrics": {"duration_ns": 400_000_000, "num_input_tokens": 12,
                              "num_output_tokens": 4}},
                 {"type": "tool", "id": uid(), "name": "weather_api",
                  "input": '{"city": "Paris"}', "output": "21C sunny",
                  "status_code": 503 if failing_tool else 200,
                  "created_at": f"2026-03-04T10:{minute:02d}:03Z",
                  "metrics": {"duration_ns": 250_000}},
             ]},
            {"type": "retriever", "id": uid(), "name": "docs", "input": "Paris",
             "created_at": f"2026-03-04T10:{minute:02d}:04Z",
             "output": [{"content": "Paris climate guide"}, {"content": "FAQ"}]},
        ],
    }


@pytest.fixture
def populated(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A chain of three sessions (user-42), plus one unrelated session."""
    path = tmp_path / "store.db"
    store = Store(path)
    try:
        pid, lsid = store.ensure_target()
        chain: list[dict[str, Any]] = []
        prev = None
        for i in range(3):
            s = store.create_session(pid, {
                "log_stream_id": lsid, "name": "support-chat", "external_id": "user-42",
                "previous_session_id": prev, "user_metadata": {"plan": "pro", "turn": str(i)}})
            store.ingest_traces(pid, {"log_stream_id": lsid, "session_id": s["id"],
                                      "traces": [trace(i * 10 + j, failing_tool=(i == 2))
                                                 for j in range(i + 1)]})
            chain.append(s)
            prev = s["id"]
        chain.append(store.create_session(pid, {"log_stream_id": lsid, "name": "batch-job"}))
    finally:
        store.close()
    return path, chain


def test_sessions_lists_chains(populated: tuple[Path, list[dict[str, Any]]],
                               capsys: pytest.CaptureFixture[str]) -> None:
    path, made = populated
    assert main(["sessions", "--store", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0]
    for column in ("CHAIN", "SESSION", "NAME", "EXTERNAL ID", "PREV", "TRACES", "CREATED",
                   "METADATA"):
        assert column in header
    short = [s["id"][:8] for s in made]
    # newest chain first: the lone batch-job, then the user-42 chain oldest to newest
    order = [line for line in lines if any(s in line for s in short)]
    assert order[0].startswith("1 ") and order[1].startswith("2 ")
    assert not order[2].startswith("2") and order[2].startswith(" ")
    # each session shows its predecessor's short id, its trace count and metadata
    cells = [line.split()[1:] if line[0] != " " else line.split() for line in order]
    assert cells[0][:5] == [short[3], "batch-job", "-", "-", "0"]
    assert cells[1][:5] == [short[0], "support-chat", "user-42", "-", "1"]
    assert cells[2][:5] == [short[1], "support-chat", "user-42", short[0], "2"]
    assert cells[3][:5] == [short[2], "support-chat", "user-42", short[1], "3"]
    assert [c[-2:] for c in cells[1:]] == [["plan=pro,", f"turn={i}"] for i in range(3)]
    assert "batch-job" in order[0] and "(unnamed)" not in out
    # columns are aligned: every row puts the session id at the same offset
    offsets = {line.index(cell[0]) for line, cell in zip(order, cells, strict=True)}
    assert len(offsets) == 1
    assert "4 session(s) in 2 chains" in out and "6 traces, 24 spans" in out


def test_sessions_limit_and_env_store(populated: tuple[Path, list[dict[str, Any]]],
                                      capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path, made = populated
    monkeypatch.setenv("GALILEO_SESSIONS_STORE", str(path))
    assert main(["sessions", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert made[3]["id"][:8] in out and made[2]["id"][:8] in out
    assert made[0]["id"][:8] not in out
    assert "2 session(s) in 2 chains" in out


def test_show_prints_trees(populated: tuple[Path, list[dict[str, Any]]],
                           capsys: pytest.CaptureFixture[str]) -> None:
    path, made = populated
    target = made[2]
    assert main(["show", target["id"][:8], "--store", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"Session {target['id']}"
    assert "  name         support-chat" in lines
    assert "  external id  user-42" in lines
    assert f"  previous     {made[1]['id']}" in lines
    assert "  metadata     plan=pro, turn=2" in lines
    assert "  traces       3" in lines
    roots = [line for line in lines if line.startswith("● trace")]
    assert [r.split()[2] for r in roots] == ["turn-20", "turn-21", "turn-22"]
    assert roots[0] == "● trace turn-20 · 1,500.0 ms · ok · 2026-03-04 10:20:00"
    first = lines[lines.index(roots[0]):lines.index(roots[1])]
    assert first[1].startswith("│ in:  What is the weather like in Paris today?")
    assert first[1].endswith("…") and len(first[1]) - len("│ in:  ") == 60
    assert first[2] == "│ out: Sunny, 21 degrees."
    assert first[3] == "├── workflow plan · 900.0 ms · ok"
    assert first[4] == "│   │ in:  weather Paris"
    assert first[5] == "│   ├── llm chat · 400.0 ms · ok · gpt-4o · 12→4 tokens"
    assert first[6] == "│   │     in:  [2 messages] user: Weather in Paris?"
    assert first[7] == "│   │     out: assistant: Let me check."
    assert first[8] == "│   └── tool weather_api · 0.25 ms · error 503"
    assert first[9] == '│         in:  {"city": "Paris"}'
    assert first[10] == "│         out: 21C sunny"
    assert first[11] == "└── retriever docs · - ms · ok"
    assert first[12] == "      in:  Paris"
    assert first[13] == "      out: 2 documents: Paris climate guide"


def test_show_full_id_and_uppercase(populated: tuple[Path, list[dict[str, Any]]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, made = populated
    assert main(["show", made[3]["id"].upper(), "--store", str(path)]) == 0
    out = capsys.readouterr().out
    assert "batch-job" in out and "previous     -" in out and "(no traces in this session)" in out


def test_show_unknown_and_ambiguous(populated: tuple[Path, list[dict[str, Any]]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = populated
    assert main(["show", "zzzz", "--store", str(path)]) == 1
    err = capsys.readouterr().err
    assert "no session matches 'zzzz'" in err and "Traceback" not in err
    assert main(["show", "", "--store", str(path)]) == 1
    assert "no session matches" in capsys.readouterr().err


def test_show_ambiguous_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    try:
        pid, lsid = store.ensure_target()
        ids = [store.create_session(pid, {"log_stream_id": lsid})["id"] for _ in range(40)]
    finally:
        store.close()
    first_chars = [i[0] for i in ids]
    common = max(set(first_chars), key=first_chars.count)
    assert main(["show", common, "--store", str(path)]) == 1
    assert "give more characters" in capsys.readouterr().err


def test_missing_store_is_a_friendly_message(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing" / "store.db"
    for argv in (["sessions", "--store", str(missing)], ["show", "abc", "--store", str(missing)]):
        assert main(argv) == 1
        captured = capsys.readouterr()
        assert "no local store at" in captured.err and str(missing) in captured.err
        assert "Traceback" not in captured.err and captured.out == ""
    assert not missing.exists() and not missing.parent.exists()


def test_corrupt_store_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 200)
    assert main(["sessions", "--store", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "cannot read the local store" in err and "bad.db" in err


def test_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.db"
    Store(path).close()
    assert main(["sessions", "--store", str(path)]) == 0
    assert "No sessions recorded yet." in capsys.readouterr().out


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "sessions" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "show" in capsys.readouterr().out
    assert main(["sessions", "--limit", "x"]) == 2
    assert main(["sessions", "--limit", "0", "--store", "/nonexistent/x.db"]) == 1


def test_serve_without_the_extra(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "galileo_sessions.server", None)
    assert main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err.strip() == \
        "the dev server needs the server extra: pip install 'galileo-sessions[server]'"


def test_ascii_fallback(populated: tuple[Path, list[dict[str, Any]]],
                        monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    path, made = populated

    class AsciiOut:
        encoding = "ascii"

        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> int:
            s.encode("ascii")
            self.text += s
            return len(s)

        def flush(self) -> None:
            pass

    fake = AsciiOut()
    monkeypatch.setattr(sys, "stdout", fake)
    assert main(["show", made[0]["id"], "--store", str(path)]) == 0
    assert "* trace turn-0" in fake.text and "+-- workflow plan" in fake.text


# -- the pure rendering helpers ------------------------------------------------------------------

def test_chains_survive_cycles_and_missing_predecessors() -> None:
    a = {"id": "a" * 8, "created_at": "1", "previous_session_id": "b" * 8}
    b = {"id": "b" * 8, "created_at": "2", "previous_session_id": "a" * 8}
    c = {"id": "c" * 8, "created_at": "3", "previous_session_id": "gone"}
    chains = session_chains([a, b, c])
    assert [[s["id"][0] for s in chain] for chain in chains] == [["c"], ["a", "b"]]


def test_one_line_summaries() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line(None) == ""
    assert one_line({"role": "assistant", "content": None, "tool_calls": [
        {"id": "1", "function": {"name": "search", "arguments": "{}"}}]}) == \
        "assistant: → search()"
    assert one_line([{"type": "text", "text": "hi"}, {"type": "file", "file_id": "x"}]) == \
        "hi [file]"
    assert one_line({"action": "deny", "matched": True}) == "deny (matched=True)"
    assert one_line({"k": "v"}) == '{"k": "v"}'
    assert len(one_line("x" * 500)) == 60
    lines = render_trace({"type": "trace", "name": "", "is_complete": False, "spans": []})
    assert lines == ["● trace · - ms · ok · - · incomplete"]


def test_cli_reads_a_running_dev_server(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--server URL`` lists and shows what the library delivered to a dev server."""
    import galileo_sessions as gs
    from galileo_sessions.server import ServerThread

    with ServerThread(Store(tmp_path / "served.db"), api_key="k-123") as srv:
        gs.configure(api_url=srv.url, api_key="k-123", spool_dir=str(tmp_path / "spool"))

        @gs.session("remote-chat", external_id="user-7")
        @gs.trace
        def turn(question: str) -> str:
            return question.upper()

        turn("first")
        turn("second")
        assert gs.flush(timeout=10).ok
        monkeypatch.setenv("GALILEO_API_KEY", "k-123")
        assert main(["sessions", "--server", srv.url]) == 0
        listing = capsys.readouterr().out
        assert listing.count("remote-chat") == 2 and "user-7" in listing
        sessions = srv.store.list_sessions()
        newest = sessions[0]
        assert main(["show", newest["id"][:8], "--server", srv.url]) == 0
        shown = capsys.readouterr().out
        assert "trace turn" in shown and "SECOND" in shown
        assert sessions[1]["id"][:8] in shown  # the previous session of the chain
        assert main(["sessions", "--server", srv.url, "--api-key", "wrong"]) == 1
        assert "401" in capsys.readouterr().err
        gs.shutdown()
