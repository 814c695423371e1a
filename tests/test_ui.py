"""The web view over HTTP (no browser): status codes, escaping, pagination, filters, live."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("jinja2")

from galileo_sessions import cli
from galileo_sessions._store import Store
from galileo_sessions.server import ServerThread
from galileo_sessions.ui import UiServer, views

ROOT = Path(__file__).resolve().parent.parent
XSS = "<script>window.pwned=1</script>"
ENV = {"logging_method": "python_client", "client_version": "test", "reliable": True}


class Data:
    """A store with helpers to add sessions and traces the way the library does."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pid, self.lsid = store.ensure_target()

    def session(self, name: str | None = "turn", *, external_id: str | None = None,
                metadata: dict[str, str] | None = None,
                previous: str | None = None) -> str:
        body: dict[str, Any] = {**ENV, "log_stream_id": self.lsid, "name": name,
                                "external_id": external_id, "user_metadata": metadata or {},
                                "previous_session_id": previous}
        return str(self.store.create_session(self.pid, body)["id"])

    def trace(self, session_id: str, *, name: str = "handle_turn", inp: str = "hello",
              out: str = "world", spans: list[dict[str, Any]] | None = None) -> str:
        trace_id = str(uuid.uuid4())
        self.store.ingest_traces(self.pid, {
            **ENV, "log_stream_id": self.lsid, "session_id": session_id,
            "traces": [{"type": "trace", "id": trace_id, "name": name, "input": inp,
                        "output": out, "metrics": {"duration_ns": 5_000_000},
                        "spans": spans or []}]})
        return trace_id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "ui.db")
    yield s
    s.close()


@pytest.fixture
def data(store: Store) -> Data:
    return Data(store)


@pytest.fixture
def ui(store: Store) -> Iterator[httpx.Client]:
    with UiServer(store) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def rows(page: str) -> list[str]:
    return re.findall(r'<tr class="session-row" data-id="([0-9a-f-]{36})"', page)


LLM_SPAN = {"type": "llm", "name": "decide", "model": "m-1",
            "input": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Where is my order?"}],
            "output": {"role": "assistant", "content": "It shipped."},
            "metrics": {"duration_ns": 2_000_000, "num_input_tokens": 12,
                        "num_output_tokens": 4}}


def test_pages_answer_with_html_and_security_headers(ui: httpx.Client, data: Data) -> None:
    sid = data.session("support-turn", external_id="alice", metadata={"channel": "chat"})
    data.trace(sid, spans=[{"type": "workflow", "name": "plan", "input": "q",
                            "metrics": {"duration_ns": 3_000_000}, "spans": [LLM_SPAN]},
                           {"type": "tool", "name": "lookup", "input": '{"id": 7}',
                            "status_code": 404, "metrics": {"duration_ns": 1000},
                            "user_metadata": {"error.type": "NotFound",
                                              "error.message": "no order 7"}}])
    listing = ui.get("/")
    assert listing.status_code == 200
    assert listing.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in listing.headers["content-security-policy"]
    assert rows(listing.text) == [sid]
    page = ui.get(f"/ui/sessions/{sid}")
    assert page.status_code == 200
    text = page.text
    for expected in ("support-turn", "handle_turn", "decide", "lookup", "error 404",
                     "NotFound: no order 7", "12→4 tok", "m-1", "Be brief.", "It shipped.",
                     'class="msg role-assistant"', "5.0 ms", "2.0 ms", "icon-llm"):
        assert expected in text, expected
    assert "&#34;id&#34;: 7" in text  # tool input pretty-printed as JSON
    assert ui.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
    assert ui.get("/ui/static/ui.js").status_code == 200
    assert ui.get("/ui/static/../routes.py").status_code == 404
    assert ui.get("/ui/static/secret.txt").status_code == 404
    assert ui.get(f"/ui/sessions/{uuid.uuid4()}").status_code == 404
    assert ui.get("/ui/sessions/not-an-id").status_code == 404
    assert ui.get("/?page=0").status_code == 422
    assert ui.get("/?per_page=100000").status_code == 422


def test_every_user_value_is_escaped(ui: httpx.Client, data: Data) -> None:
    sid = data.session(XSS, external_id=XSS, metadata={"<i>k</i>": XSS})
    nxt = data.session(XSS, external_id=XSS, previous=sid)
    data.trace(sid, name=XSS, inp=XSS, out=XSS, spans=[
        {**LLM_SPAN, "name": XSS, "model": XSS,
         "input": [{"role": "user", "content": XSS}],
         "output": {"role": "assistant", "content": XSS}},
        {"type": "tool", "name": "t", "input": XSS, "output": XSS, "tags": [XSS],
         "user_metadata": {"error.message": XSS}, "status_code": 500}])
    escaped = html.escape(XSS, quote=True)
    pages = [ui.get("/").text, ui.get(f"/ui/sessions/{sid}").text,
             ui.get(f"/ui/sessions/{nxt}").text, ui.get("/ui/search", params={"q": "pwned"}).text,
             ui.get("/", params={"external_id": XSS}).text,
             ui.get("/", params={"name": XSS, "meta": f"<i>k</i>={XSS}"}).text,
             ui.get("/ui/search", params={"q": XSS}).text]
    live = ui.get(f"/ui/sessions/{sid}/live").json()
    pages += [live["head"], live["traces"]]
    for text in pages:
        assert "<script>window" not in text
        assert "window.pwned" in text
        assert escaped in text or "&lt;script&gt;" in text
    # the filters echo the values back escaped, and match them exactly
    assert rows(pages[4]) == [nxt, sid]
    assert rows(pages[5]) == [sid]


def test_pagination(ui: httpx.Client, data: Data) -> None:
    ids = [data.session(f"s{i}") for i in range(120)]
    newest_first = list(reversed(ids))
    first = ui.get("/").text
    assert rows(first) == newest_first[:50]
    assert "1\N{EN DASH}50 of 120" in first and "Page 1 of 3" in first
    assert 'href="/?page=2"' in first
    second = ui.get("/?page=2").text
    assert rows(second) == newest_first[50:100]
    assert 'href="/"' in second and 'href="/?page=3"' in second
    third = ui.get("/?page=3").text
    assert rows(third) == newest_first[100:]
    assert "101\N{EN DASH}120 of 120" in third
    assert rows(ui.get("/?page=9").text) == []
    assert rows(ui.get("/?per_page=10&page=2").text) == newest_first[10:20]
    filtered = ui.get("/?name=s1&per_page=5").text  # s1, s10..s19, s100..s119
    assert "of 31" in filtered
    assert "name=s1" in re.search(r'class="older" href="([^"]+)"', filtered).group(1)


def test_filters_by_name_external_id_and_metadata(ui: httpx.Client, data: Data) -> None:
    a = data.session("support-turn", external_id="alice", metadata={"plan": "pro", "x": "1"})
    b = data.session("billing", external_id="bob", metadata={"plan": "free"})
    c = data.session("Support-followup", external_id="alice", metadata={"plan": "free"})
    assert rows(ui.get("/", params={"name": "support"}).text) == [c, a]
    assert rows(ui.get("/", params={"external_id": "alice"}).text) == [c, a]
    assert rows(ui.get("/", params={"external_id": "ali"}).text) == []
    assert rows(ui.get("/", params={"meta": "plan=free"}).text) == [c, b]
    assert rows(ui.get("/", params={"meta": "plan=pro, x=1"}).text) == [a]
    assert rows(ui.get("/", params=[("meta", "plan=free"), ("meta", "x=1")]).text) == []
    both = ui.get("/", params={"name": "support", "meta": "plan=free"}).text
    assert rows(both) == [c] and "matching the filters" in both
    assert "No session matches" in ui.get("/", params={"name": "nothing"}).text


def test_chain_links_on_list_and_session_pages(ui: httpx.Client, data: Data) -> None:
    one = data.session("turn", external_id="u")
    two = data.session("turn", external_id="u", previous=one)
    three = data.session("turn", external_id="u", previous=two)
    listing = ui.get("/").text
    row_two = listing[listing.index(f'data-id="{two}"'):listing.index(f'data-id="{one}"')]
    assert f'class="prev" href="/ui/sessions/{one}"' in row_two
    assert f'class="next" href="/ui/sessions/{three}"' in row_two
    page = ui.get(f"/ui/sessions/{two}").text
    assert f'class="chain-prev" href="/ui/sessions/{one}"' in page
    assert f'class="chain-next" href="/ui/sessions/{three}"' in page
    assert page.index(one) < page.index(f"/ui/sessions/{three}")
    first = ui.get(f"/ui/sessions/{one}").text
    assert "chain-prev" not in first and f'class="chain-next" href="/ui/sessions/{two}"' in first
    assert data.store.session_chain(three) == data.store.session_chain(one)
    assert [c["id"] for c in data.store.session_chain(two)] == [one, two, three]


def test_live_endpoint_reports_new_traces(ui: httpx.Client, data: Data) -> None:
    sid = data.session("live")
    data.trace(sid, name="first")
    live = ui.get(f"/ui/sessions/{sid}/live").json()
    assert live["trace_count"] == 1
    version = live["version"]
    assert ui.get(f"/ui/sessions/{sid}/live", params={"v": version}).status_code == 204
    data.trace(sid, name="second")
    changed = ui.get(f"/ui/sessions/{sid}/live", params={"v": version})
    assert changed.status_code == 200
    body = changed.json()
    assert body["trace_count"] == 2 and "second" in body["traces"]
    assert body["version"] != version
    # a span patched into an existing trace changes the version too
    assert ui.get(f"/ui/sessions/{sid}/live", params={"v": body["version"]}).status_code == 204
    assert ui.get(f"/ui/sessions/{uuid.uuid4()}/live").status_code == 404
    assert ui.get("/ui/api/latest").json()["latest_seq"] >= 1


def test_search(ui: httpx.Client, data: Data) -> None:
    sid = data.session("s")
    t1 = data.trace(sid, name="t-refund", inp="Can I get a REFUND?", out="yes")
    t2 = data.trace(sid, name="t-ship", inp="shipping?", out="3 days, no refund needed")
    data.trace(sid, name="t-other", inp="hello", out="héllo wörld")
    page = ui.get("/ui/search", params={"q": "refund"}).text
    hits = re.findall(r'href="/ui/sessions/[0-9a-f-]+#trace-([0-9a-f-]+)"', page)
    assert hits == [t2, t1]  # newest first, input and output both searched
    assert "<mark>REFUND</mark>" in page and "<mark>refund</mark>" in page
    assert "wörld" in ui.get("/ui/search", params={"q": "wörld"}).text
    assert "No trace input or output contains" in ui.get("/ui/search?q=zzz").text
    assert ui.get("/ui/search").status_code == 200
    assert ui.get("/ui/search", params={"q": '"quoted'}).status_code == 200


def test_dev_server_serves_the_view_next_to_the_api(tmp_path: Path) -> None:
    with ServerThread(tmp_path / "dev.db") as server, httpx.Client(base_url=server.url) as c:
        data = Data(server.store)
        sid = data.session("via-dev-server")
        assert c.get("/healthcheck").status_code == 200
        assert c.get("/projects").status_code == 200
        page = c.get("/")
        assert page.status_code == 200 and rows(page.text) == [sid]
        assert c.get(f"/ui/sessions/{sid}").status_code == 200
        assert c.get("/no/such/api").status_code == 404


def test_cli_ui_serves_on_loopback(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    store = Store(path)
    Data(store).session("from-cli")
    store.close()
    env = {**os.environ, "GALILEO_SESSIONS_STORE": str(path)}
    with subprocess.Popen([sys.executable, "-m", "galileo_sessions.cli", "ui", "--port", "0",
                           "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, env=env, cwd=ROOT) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert url, line
            assert "from-cli" in httpx.get(url.group(0) + "/", timeout=10).text
            assert httpx.get(url.group(0) + "/projects", timeout=10).status_code == 404
        finally:
            proc.terminate()
            proc.wait(10)
    assert cli.main(["--help"]) in (0, 2)


def test_views_helpers() -> None:
    assert views.duration_label(None) == "\N{EN DASH}"
    assert views.duration_label(40_000) == "0.04 ms"
    assert views.duration_label(3_700_000) == "3.7 ms"
    assert views.duration_label(2_500_000_000) == "2.50 s"
    blocks = views.io_blocks({"input": '{"a": [1]}', "output": "plain"})
    assert [(b.label, b.kind) for b in blocks] == [("Input", "json"), ("Output", "text")]
    assert json.loads(blocks[0].text) == {"a": [1]}
    chat = views.io_blocks({"input": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}]}, {"role": "assistant", "content": None,
                                           "tool_calls": [{"id": "1", "function": {
                                               "name": "f", "arguments": "{}"}}]}]})[0]
    assert chat.kind == "chat" and chat.messages[0].text == "hi"
    assert '"name": "f"' in chat.messages[1].extra
    docs = views.io_blocks({"output": [{"content": "doc", "metadata": {"k": "v"}}]})[0]
    assert docs.kind == "docs" and docs.docs[0][0] == "doc"
    snip = views.snippet("input", "x" * 200 + "Needle" + "y" * 200, "needle")
    assert snip is not None and snip.match == "Needle" and snip.before.startswith("…")
    assert views.parse_meta(["a=1, b = 2", "bad", "=x"]) == {"a": "1", "b": "2"}


@pytest.mark.slow
def test_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ui_bench.py"),
                          "--sessions", "12", "--spans", "240", "--repeat", "2"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    assert "| session list, page 1 |" in out.stdout
    assert "| search, rare word |" in out.stdout
    assert "12 sessions" in out.stdout
