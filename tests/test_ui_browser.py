"""The web view in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The store is filled by the demo (``examples/support_agent.py``, run in a subprocess), the view
is served on 127.0.0.1 with a free port, and the tests click through it like a user. They are
skipped, with the reason, on a machine without ``/usr/bin/chromium`` or without Playwright
(``playwright install`` is never used: the browser is the system one).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GALILEO_SESSIONS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need Playwright for Python (pip install "
                                  "playwright; the system chromium is used)")
pytest.importorskip("jinja2")

from galileo_sessions._store import Store  # noqa: E402
from galileo_sessions.ui import UiServer  # noqa: E402

Page = Any
TIMEOUT_MS = 10_000


def run_demo(store_path: Path, spool: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GALILEO_") or k == "GALILEO_SESSIONS_CHROMIUM"}
    env.update(GALILEO_SESSIONS_STORE=str(store_path), GALILEO_SESSIONS_SPOOL_DIR=str(spool))
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "support_agent.py")],
                         env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    tmp = tmp_path_factory.mktemp("ui-browser")
    run_demo(tmp / "store.db", tmp / "spool")
    with UiServer(tmp / "store.db") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(server: UiServer) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM)
                                   else shutil.which("chromium"), args=CHROMIUM_ARGS)
        except Exception as exc:  # a broken browser install is an environment problem
            pytest.skip(f"cannot launch Chromium: {exc}")
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: UiServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900},
                                  base_url=server.url)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Nothing may be loaded from the network: every request goes to our server.
    requested: list[str] = []
    pg.on("request", lambda req: requested.append(req.url))
    yield pg
    context.close()
    assert not errors, errors
    assert all(url.startswith(server.url) for url in requested), requested


def expect(locator: Any) -> Any:
    return sync_api.expect(locator)


def test_list_page_shows_the_demo_sessions(page: Page) -> None:
    page.goto("/")
    rows = page.locator("tr.session-row")
    expect(rows).to_have_count(6)
    expect(page.locator("h1")).to_have_text("Sessions")
    expect(rows.first.locator(".session-link")).to_have_text("support-turn")
    assert sorted(set(page.locator("td a.chip:not(.subtle)").all_inner_texts())) == ["alice", "bob"]
    # the newest bob session is the one whose order lookup failed
    expect(page.locator("tr.session-row .badge.err")).to_have_count(1)
    # filter by external id through the chip, then by metadata through the form
    page.locator("td a.chip:not(.subtle)", has_text="alice").first.click()
    expect(rows).to_have_count(3)
    page.goto("/")
    page.fill("input[name=meta]", "user=bob")
    page.click("button[type=submit]")
    expect(rows).to_have_count(3)
    assert "meta=user%3Dbob" in page.url


def test_click_through_a_chain(page: Page) -> None:
    page.goto("/?external_id=bob")
    newest = page.locator("tr.session-row").first
    newest_id = newest.get_attribute("data-id")
    # walk back with the "previous" link of the list, then the session page's links
    newest.locator("a.prev").click()
    expect(page.locator(".chain-list li.here")).to_contain_text("2. support-turn")
    middle_url = page.url
    page.click("a.chain-prev")
    expect(page.locator(".chain-list li.here")).to_contain_text("1. support-turn")
    expect(page.locator("span.disabled", has_text="← Previous")).to_be_visible()
    page.click("a.chain-next")
    assert page.url == middle_url
    page.click("a.chain-next")
    assert page.url.endswith(f"/ui/sessions/{newest_id}")
    expect(page.locator("span.disabled", has_text="Next →")).to_be_visible()
    expect(page.locator(".chain-list li")).to_have_count(3)


def _open_failed_session(page: Page) -> None:
    page.goto("/?external_id=bob")
    page.locator("tr.session-row").first.locator("a.session-link").click()
    expect(page.locator("h1")).to_contain_text("support-turn")


def test_expand_a_trace_tree(page: Page) -> None:
    _open_failed_session(page)
    trace = page.locator("details.trace").first
    summary = trace.locator("> summary")
    expect(summary).to_contain_text("handle_turn")
    expect(summary).to_contain_text("1 error")
    # collapse and expand the tree
    if trace.get_attribute("open") is not None:
        summary.click()
    expect(trace.locator("details.type-tool").first).to_be_hidden()
    summary.click()
    names = trace.locator("details.node > summary .name")
    expect(names).to_have_text(["handle_turn", "plan", "search_kb", "decide", "lookup_order",
                                "stream_answer"])
    types = trace.locator("details.node > summary .type").all_inner_texts()
    assert types == ["trace", "workflow", "retriever", "llm", "tool", "llm"]
    durations = trace.locator("details.node > summary .dur").all_inner_texts()
    assert all(re.fullmatch(r"\d+\.\d+ (ms|s)", d) for d in durations), durations
    tool = trace.locator("details.type-tool").first
    expect(tool.locator("> summary .badge")).to_have_text("error 404")
    expect(tool.locator("> summary .bar")).to_have_class(re.compile("bar-err"))
    for icon in ("workflow", "retriever", "llm", "tool"):
        expect(trace.locator(f"svg.icon-{icon}").first).to_be_visible()
    # every bar sits on the trace's time axis
    lefts = [float(s.split("left:")[1].split("%")[0]) for s in
             trace.locator("details.node > summary .bar").evaluate_all(
                 "els => els.map(e => e.getAttribute('style'))")]
    assert lefts[0] == 0.0 and all(0 <= v <= 100 for v in lefts)
    # a leaf shows its input/output in full on click: the llm transcript
    decide = trace.locator("details.type-llm").first
    expect(decide.locator(".chat").first).to_be_hidden()
    decide.locator("> summary").click()
    expect(decide.locator(".msg.role-system")).to_contain_text("You are a support agent.")
    expect(decide.locator(".msg.role-user")).to_contain_text("Please cancel order B-9999")
    expect(decide.locator(".msg.role-assistant")).to_contain_text("lookup_order:B-9999")
    expect(decide.locator("> summary .tokens")).to_have_text("9→3 tok")
    tool.locator("> summary").click()
    expect(tool.locator(".error-line")).to_have_text("OrderNotFound: no order B-9999")
    expect(tool.locator("pre.json").first).to_contain_text('"order_id": "B-9999"')
    # a parent's own input/output sits behind its "Input, output and details" toggle
    plan = trace.locator("details.type-workflow").first
    plan.locator("> .panel details.io-toggle > summary").click()
    expect(plan.locator("> .panel pre.json").first).to_contain_text('"question"')


def test_live_update_appends_a_trace(page: Page, server: UiServer) -> None:
    _open_failed_session(page)
    session_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("details.trace")).to_have_count(1)
    page.locator("details.type-llm > summary").first.click()  # state kept across updates
    store: Store = server.store
    session = store.get_session_by_id(session_id)
    pid, run_id = session["project_id"], session["run_id"]
    store.ingest_traces(pid, {
        "log_stream_id": run_id, "session_id": session_id,
        "traces": [{"type": "trace", "id": str(uuid.uuid4()), "name": "late_follow_up",
                    "input": "one more thing", "output": "sure",
                    "metrics": {"duration_ns": 1_500_000},
                    "spans": [{"type": "tool", "name": "late_tool", "input": "x",
                               "metrics": {"duration_ns": 500_000}}]}]})
    expect(page.locator("details.trace")).to_have_count(2, timeout=TIMEOUT_MS)
    expect(page.locator("details.trace").nth(1).locator("> summary")).to_contain_text(
        "late_follow_up")
    expect(page.locator("#trace-count")).to_have_text("2")
    expect(page.locator("details.type-llm .msg.role-system").first).to_be_visible()
    # the list page notices new sessions too
    page.goto("/")
    notice = page.locator("#new-sessions")
    expect(notice).to_be_hidden()
    store.create_session(pid, {"log_stream_id": run_id, "name": "brand-new"})
    expect(notice).to_be_visible(timeout=TIMEOUT_MS)
    notice.locator("a").click()
    expect(page.locator("tr.session-row").first.locator(".session-link")).to_have_text(
        "brand-new")


def test_search_box(page: Page) -> None:
    page.goto("/")
    page.fill("header input[name=q]", "refund")
    page.press("header input[name=q]", "Enter")
    hits = page.locator("li.hit")
    expect(hits).to_have_count(1)
    expect(hits.first.locator("mark")).to_have_text("refund")
    hits.first.locator("a.hit-link").click()
    assert "#trace-" in page.url
    trace_id = page.url.split("#", 1)[1]
    expect(page.locator(f"details#{trace_id}")).to_have_attribute("open", "")
    expect(page.locator(f"details#{trace_id} .name").first).to_have_text("handle_turn")
    page.fill("header input[name=q]", "no such words anywhere")
    page.press("header input[name=q]", "Enter")
    expect(page.locator(".empty")).to_contain_text("No trace input or output contains")


def test_script_in_a_span_input_is_shown_as_text(page: Page, server: UiServer) -> None:
    store = server.store
    pid, lsid = store.ensure_target()
    payload = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\">"
    sid = store.create_session(pid, {"log_stream_id": lsid, "name": payload,
                                     "user_metadata": {"note": payload}})["id"]
    store.ingest_traces(pid, {"log_stream_id": lsid, "session_id": sid, "traces": [{
        "type": "trace", "name": payload, "input": payload, "output": payload,
        "spans": [{"type": "tool", "name": payload, "input": payload, "output": payload}]}]})
    page.goto(f"/ui/sessions/{sid}")
    page.locator("details.type-tool > summary").first.click()
    expect(page.locator("details.type-tool pre.text").first).to_have_text(payload)
    expect(page.locator("h1")).to_contain_text(payload)
    page.goto("/")
    expect(page.locator("a.session-link").first).to_have_text(payload)
    page.goto("/ui/search?q=pwned")
    expect(page.locator("li.hit").first).to_contain_text("<script>")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("body script").count() == 0
