"""Interop with the official Galileo SDK (PyPI ``galileo``, extra ``interop``).

1. The official client, pointed at the dev server with its documented environment variables,
   logs a session with traces in batch mode and in distributed mode; the data lands in the
   store and ``galileo-sessions show`` prints it. It runs in a subprocess, which isolates the
   SDK's global state, atexit hooks and event-loop threads.
2. Our own request bodies (as the dev server recorded them) validate against the official
   SDK's pydantic request models.

``galileo`` pins ``wrapt<2``, so it is not in the ``test`` extra. The tests run when it is
importable here, or from a separate install named by ``GALILEO_INTEROP_SITE`` (a
``pip install --target DIR galileo`` folder, put on the subprocess's ``PYTHONPATH`` only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _delivery_helpers import (  # noqa: F401 - ``server`` is a fixture
    API_KEY,
    Expected,
    child_env,
    configure_for,
    read_store,
    run_child,
    run_workload,
    server,
    server_requests,
    write_requests,
)

import galileo_sessions as gs
from galileo_sessions import cli
from galileo_sessions.server import ServerThread

pytestmark = pytest.mark.slow

_SITE = os.environ.get("GALILEO_INTEROP_SITE", "")


def _official_env(tmp_path: Path, srv: ServerThread) -> dict[str, str]:
    env = child_env(tmp_path, srv)
    if _SITE:
        env["PYTHONPATH"] = _SITE  # the official SDK and its pinned dependencies only
    env.update(GALILEO_API_URL=srv.url, GALILEO_CONSOLE_URL=srv.url, GALILEO_API_KEY=API_KEY,
               GALILEO_PROJECT="interop", GALILEO_LOG_STREAM="official",
               GALILEO_INGEST_BETA_DISABLED="1", GALILEO_HOME_DIR=str(tmp_path / "home"),
               GALILEO_LOG_LEVEL="WARNING")
    return env


def _official_available(tmp_path: Path, srv: ServerThread) -> None:
    probe = subprocess.run([sys.executable, "-c", "import galileo.logger"],
                           env=_official_env(tmp_path, srv), capture_output=True,
                           text=True, timeout=120, check=False)
    if probe.returncode != 0:
        pytest.skip("the official `galileo` package is not installed (extra `interop`, or "
                    "GALILEO_INTEROP_SITE)")


OFFICIAL_SCRIPT = """
import json, os
from galileo.logger import GalileoLogger

project, stream = os.environ["GALILEO_PROJECT"], os.environ["GALILEO_LOG_STREAM"]
out = {}
batch = GalileoLogger(project=project, log_stream=stream)
out["batch_session"] = batch.start_session(name="official-batch", external_id="ext-batch")
out["batch_traces"] = []
for i in range(2):
    trace = batch.start_trace(input="hello %d" % i, name="batch-trace")
    out["batch_traces"].append(str(trace.id))
    batch.add_llm_span(input="hello", output="hi there", model="gpt-test",
                       num_input_tokens=3, num_output_tokens=2)
    batch.conclude(output="hi there")
    batch.flush()

dist = GalileoLogger(project=project, log_stream=stream, mode="distributed")
out["dist_session"] = dist.start_session(name="official-dist", external_id="ext-dist",
                                         previous_session_id=out["batch_session"])
trace = dist.start_trace(input="question", name="dist-trace")
out["dist_trace"] = str(trace.id)
dist.add_workflow_span(input="plan", name="workflow")
dist.add_llm_span(input="q", output="a", model="gpt-test")
dist.add_tool_span(input="t", output="r", name="lookup-tool")
dist.conclude(output="workflow done")
dist.conclude(output="final answer")
dist.flush()
dist.terminate()
batch.terminate()
print(json.dumps(out))
"""


def test_official_sdk_batch_and_distributed_land_in_the_store(
        server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _official_available(tmp_path, server)
    proc = run_child(OFFICIAL_SCRIPT, _official_env(tmp_path, server), timeout=180)
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    stored = read_store(server.store.path)
    assert set(stored.sessions) == {out["batch_session"], out["dist_session"]}
    assert stored.sessions[out["dist_session"]]["previous_session_id"] == out["batch_session"]
    assert stored.sessions[out["batch_session"]]["external_id"] == "ext-batch"
    assert set(stored.traces) == {*out["batch_traces"], out["dist_trace"]}
    for trace_id in out["batch_traces"]:
        assert stored.traces[trace_id]["session_id"] == out["batch_session"]
    assert stored.traces[out["dist_trace"]]["session_id"] == out["dist_session"]
    dist_spans = [s for s in stored.spans.values() if s["trace_id"] == out["dist_trace"]]
    assert sorted(s["type"] for s in dist_spans) == ["llm", "tool", "workflow"]
    # Refused: only the official SDK's known bad session search (wire section 4.3: it sends
    # ``name`` instead of ``column_id``), as the real API refuses it, and distributed-mode
    # span ingests that raced ahead of their trace (404, retried by the SDK, wire 6.4).
    refused = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in write_requests(server)
               if r["status"] != 200]
    assert all(refusal in (("search", 422), ("spans", 404)) for refusal in refused), refused
    # The distributed trace was completed by its PATCH.
    patches = [r for r in server_requests(server) if r["method"] == "PATCH"]
    assert patches and all(r["status"] == 200 for r in patches)

    capsys.readouterr()
    assert cli.main(["show", out["dist_session"], "--store", str(server.store.path)]) == 0
    shown = capsys.readouterr().out
    for needle in ("dist-trace", "workflow", "lookup-tool", "gpt-test"):
        assert needle in shown, shown
    assert cli.main(["show", out["batch_session"], "--store", str(server.store.path)]) == 0
    shown = capsys.readouterr().out
    assert shown.count("batch-trace") == 2, shown


VALIDATE_SCRIPT = """
import json, sys
from galileo.schema.trace import SessionCreateRequest, SpansIngestRequest, TracesIngestRequest

models = {"sessions": SessionCreateRequest, "traces": TracesIngestRequest,
          "spans": SpansIngestRequest}
bodies = json.load(open(sys.argv[1]))
seen = {}
for route, body in bodies:
    model = models[route]
    model.model_validate(body)
    seen[route] = seen.get(route, 0) + 1
print(json.dumps(seen))
"""


def test_our_request_bodies_validate_against_the_official_models(
        server: ServerThread, tmp_path: Path) -> None:
    _official_available(tmp_path, server)
    configure_for(server, tmp_path)
    run_workload(Expected(), users=2, turns=2)
    assert gs.flush(timeout=30).ok
    gs.shutdown(timeout=5)
    bodies: list[tuple[str, Any]] = []
    for r in write_requests(server):
        route = r["path"].rsplit("/", 1)[-1]
        if route in ("sessions", "traces", "spans"):
            bodies.append((route, r["body"]))
    assert {route for route, _ in bodies} == {"sessions", "traces", "spans"}
    path = tmp_path / "bodies.json"
    path.write_text(json.dumps(bodies))
    proc = run_child(VALIDATE_SCRIPT, _official_env(tmp_path, server), args=[str(path)],
                     timeout=120)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["traces"] >= 1 and seen["sessions"] == 4 and seen["spans"] >= 1
