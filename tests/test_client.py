"""Tests of the httpx seam (``_client``) and the HTTP exporter.

Configuration helpers are plain unit tests. Fault mapping uses ``httpx.MockTransport``, the
one place the project allows it (injecting failures a real server cannot produce on demand).
Everything else runs against a small stdlib HTTP server on 127.0.0.1 that mimics the Galileo
routes project / log stream resolution and ingestion need, and records every request.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import galileo_sessions
from galileo_sessions._client import (
    DEFAULT_CONSOLE_URL,
    GalileoClient,
    derive_api_url,
    parse_extra_headers,
)
from galileo_sessions._exporter import Exporter, Route, Target
from galileo_sessions._http_exporter import HttpExporter
from galileo_sessions.exceptions import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    ApiTimeoutError,
    ConfigError,
)

KEY = "gsk-test-4f0c2a9e8b7d6c5e"
PID = "6f1c1c5e-3c1e-4b59-9a3e-2f7e0d1a0b01"
LSID = "0a6b7f3d-9d0e-4c51-8b3b-6f0f3c2f9e11"
EXPID = "e3a5f1d2-7c4b-4e2a-9f6d-1b2c3d4e5f60"


# ====================================================================== derive_api_url


@pytest.mark.parametrize(
    ("api_url", "console_url", "expected"),
    [
        # the default console is Galileo's SaaS
        (None, None, "https://api.galileo.ai"),
        (None, "", "https://api.galileo.ai"),
        ("", "   ", "https://api.galileo.ai"),
        (None, DEFAULT_CONSOLE_URL, "https://api.galileo.ai"),
        (None, "app.galileo.ai", "https://api.galileo.ai"),
        # a local console means the local API on 8088
        (None, "http://localhost:3000/", "http://localhost:8088"),
        (None, "localhost:3000", "http://localhost:8088"),
        (None, "http://127.0.0.1:3000", "http://localhost:8088"),
        # any other console: "console" -> "api", scheme added, trailing slash stripped
        (None, "https://console.acme.galileo.ai/", "https://api.acme.galileo.ai"),
        (None, "console.acme.com", "https://api.acme.com"),
        (None, "https://galileo.acme.com/", "https://galileo.acme.com"),
        # an explicit API URL wins over the console URL
        ("https://api.example.com/", "https://console.other.com", "https://api.example.com"),
        ("https://gw.example.com/galileo/", None, "https://gw.example.com/galileo"),
        ("http://127.0.0.1:9999/", None, "http://127.0.0.1:9999"),
        ("api.example.com", None, "https://api.example.com"),
        ("localhost:8088", None, "http://localhost:8088"),
        ("  https://api.example.com  ", None, "https://api.example.com"),
    ],
)
def test_derive_api_url(api_url: str | None, console_url: str | None, expected: str) -> None:
    assert derive_api_url(api_url=api_url, console_url=console_url) == expected


@pytest.mark.parametrize(
    ("api_url", "console_url", "option"),
    [
        ("ftp://api.example.com", None, "api_url"),
        ("https://", None, "api_url"),
        (None, "ftp://console.example.com", "console_url"),
    ],
)
def test_derive_api_url_rejects_bad_urls(api_url: str | None, console_url: str | None,
                                         option: str) -> None:
    with pytest.raises(ConfigError) as info:
        derive_api_url(api_url=api_url, console_url=console_url)
    assert info.value.option == option


# ====================================================================== parse_extra_headers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        ("", {}),
        ("  \n", {}),
        ("{}", {}),
        ('{"X-Gateway-Token": "abc", "X-Tenant": "t1"}', {"X-Gateway-Token": "abc",
                                                          "X-Tenant": "t1"}),
        ('{"X-Retries": 3, "X-Ratio": 0.5}', {"X-Retries": "3", "X-Ratio": "0.5"}),
    ],
)
def test_parse_extra_headers(raw: str | None, expected: dict[str, str]) -> None:
    assert parse_extra_headers(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "{'X-A': 'single quotes'}",
        '["X-A", "supersecret"]',
        '"supersecret"',
        "42",
        '{"X-A": null}',
        '{"X-A": true}',
        '{"X-A": ["supersecret"]}',
        '{"X-A": {"v": "supersecret"}}',
        '{"bad name": "supersecret"}',
        '{"": "supersecret"}',
        '{"X-A": "supersecret\\r\\nX-Injected: 1"}',
        '{"X-A": "caf\u00e9-supersecret"}',
    ],
)
def test_parse_extra_headers_rejects(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_extra_headers(raw)
    assert info.value.option == "GALILEO_EXTRA_HEADERS"
    assert str(info.value).startswith("GALILEO_EXTRA_HEADERS: ")
    assert "supersecret" not in str(info.value)


# ====================================================================== fault mapping


def mock_client(handler: Callable[[httpx.Request], httpx.Response],
                **kwargs: Any) -> GalileoClient:
    return GalileoClient(api_url="https://api.test", api_key=KEY,
                         transport=httpx.MockTransport(handler), **kwargs)


def raising(exc: BaseException) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    return handler


def answering(status: int, *, json_body: Any = None, text: str | None = None,
              headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if json_body is not None:
            return httpx.Response(status, json=json_body, headers=headers)
        return httpx.Response(status, text=text or "", headers=headers)
    return handler


def assert_no_key(err: BaseException) -> None:
    assert KEY not in str(err)
    assert KEY not in repr(err)
    for value in vars(err).values():
        assert KEY not in repr(value)


def call(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Any:
    client = mock_client(handler)
    try:
        return client.request("POST", "/v2/projects/p/traces", json={"traces": []}, **kwargs)
    finally:
        client.close()


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("read timed out"),
                                 httpx.ConnectTimeout("connect timed out"),
                                 httpx.WriteTimeout("write timed out"),
                                 httpx.PoolTimeout("pool timed out")])
def test_timeouts_map_to_api_timeout_error(exc: httpx.TimeoutException) -> None:
    with pytest.raises(ApiTimeoutError) as info:
        call(raising(exc))
    assert isinstance(info.value, ApiConnectionError)
    assert info.value.__cause__ is exc
    assert info.value.method == "POST"
    assert info.value.url == "https://api.test/v2/projects/p/traces"
    assert str(info.value).startswith("POST /v2/projects/p/traces timed out: ")


@pytest.mark.parametrize("exc", [httpx.ConnectError("connection refused"),
                                 httpx.ReadError("connection reset by peer"),
                                 httpx.RemoteProtocolError("server disconnected"),
                                 httpx.ProxyError("proxy said no"),
                                 ConnectionResetError(104, "reset"),
                                 OSError("network unreachable")])
def test_transport_errors_map_to_api_connection_error(exc: BaseException) -> None:
    with pytest.raises(ApiConnectionError) as info:
        call(raising(exc))
    assert not isinstance(info.value, ApiTimeoutError)
    assert info.value.__cause__ is exc
    assert str(info.value).startswith("POST /v2/projects/p/traces failed: ")


def test_transport_error_echoing_the_key_is_scrubbed() -> None:
    with pytest.raises(ApiConnectionError) as info:
        call(raising(httpx.ConnectError(f"proxy refused header Galileo-API-Key: {KEY}")))
    assert_no_key(info.value)
    assert "[REDACTED]" in str(info.value)


def test_422_with_fastapi_detail() -> None:
    detail = [{"loc": ["body", "traces", 0, "name"], "msg": "field required", "type": "missing"},
              {"loc": ["body", "traces", 1], "msg": "bad", "type": "value_error"}]
    with pytest.raises(ApiStatusError) as info:
        call(answering(422, json_body={"detail": detail}))
    err = info.value
    assert err.status_code == 422
    assert err.body == {"detail": detail}
    assert err.retry_after is None
    assert str(err) == ("POST /v2/projects/p/traces -> 422 Unprocessable Entity: "
                        "body.traces.0.name: field required (and 1 more)")


def test_404_with_string_detail() -> None:
    with pytest.raises(ApiStatusError) as info:
        call(answering(404, json_body={"detail": "Project not found"}))
    assert info.value.status_code == 404
    assert str(info.value) == "POST /v2/projects/p/traces -> 404 Not Found: Project not found"


def test_500_with_text_body() -> None:
    with pytest.raises(ApiStatusError) as info:
        call(answering(500, text="upstream exploded\n"))
    assert info.value.body == "upstream exploded\n"
    assert str(info.value) == ("POST /v2/projects/p/traces -> 500 Internal Server Error: "
                               "upstream exploded")


def test_502_with_empty_body() -> None:
    with pytest.raises(ApiStatusError) as info:
        call(answering(502))
    assert info.value.status_code == 502
    assert str(info.value) == "POST /v2/projects/p/traces -> 502 Bad Gateway"


def test_redirect_is_not_followed() -> None:
    # Following it would carry the API key to whatever host the Location names.
    with pytest.raises(ApiStatusError) as info:
        call(answering(307, headers={"Location": "https://elsewhere.test/"}))
    assert info.value.status_code == 307


def test_retry_after_delta_seconds() -> None:
    with pytest.raises(ApiStatusError) as info:
        call(answering(503, json_body={"detail": "busy"}, headers={"Retry-After": "7"}))
    assert info.value.retry_after == 7.0


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(ApiStatusError) as info:
        call(answering(429, json_body={"detail": "slow down"}, headers={"Retry-After": when}))
    assert info.value.retry_after is not None
    assert 25.0 <= info.value.retry_after <= 31.0


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0.0), ("1.5", 1.5), ("-3", None), ("soon", None), ("", None), ("nan", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: retry now
])
def test_retry_after_edge_values(value: str, expected: float | None) -> None:
    with pytest.raises(ApiStatusError) as info:
        call(answering(503, headers={"Retry-After": value}))
    assert info.value.retry_after == expected


def test_echoed_key_is_scrubbed_from_status_errors() -> None:
    with pytest.raises(ApiStatusError) as info:
        call(answering(401, json_body={"detail": f"Invalid API key {KEY}",
                                       "echo": {"headers": [KEY]}}))
    assert_no_key(info.value)
    assert str(info.value) == ("POST /v2/projects/p/traces -> 401 Unauthorized: "
                               "Invalid API key [REDACTED]")
    assert info.value.body == {"detail": "Invalid API key [REDACTED]",
                               "echo": {"headers": ["[REDACTED]"]}}

    with pytest.raises(ApiStatusError) as text_info:
        call(answering(403, text=f"forbidden: {KEY}"))
    assert_no_key(text_info.value)


def test_echoed_key_is_scrubbed_from_success_bodies() -> None:
    assert call(answering(200, json_body={"you_sent": KEY})) == {"you_sent": "[REDACTED]"}


def test_large_error_bodies_are_capped() -> None:
    detail = [{"loc": ["body", "traces", i], "msg": "bad", "type": "value_error",
               "input": "x" * 5000} for i in range(50)]
    with pytest.raises(ApiStatusError) as info:
        call(answering(422, json_body={"detail": detail}))
    body = info.value.body
    assert body["truncated"] is True
    assert body["detail"][0] == {"loc": ["body", "traces", 0], "msg": "bad",
                                 "type": "value_error"}
    assert len(json.dumps(body)) <= 4096
    assert str(info.value).endswith("body.traces.0: bad (and 49 more)")

    with pytest.raises(ApiStatusError) as text_info:
        call(answering(500, text="y" * 100_000))
    assert isinstance(text_info.value.body, str)
    assert len(text_info.value.body) < 4200
    assert len(str(text_info.value)) < 400


def test_success_bodies() -> None:
    assert call(answering(200, json_body={"id": "s1"})) == {"id": "s1"}
    assert call(answering(200, json_body=[1, 2])) == [1, 2]
    assert call(answering(204)) is None
    assert call(answering(200, text="")) is None


def test_success_with_non_json_body_is_an_api_error() -> None:
    with pytest.raises(ApiError) as info:
        call(answering(200, text="<html>proxy login</html>"))
    assert not isinstance(info.value, ApiStatusError)
    assert isinstance(info.value.__cause__, ValueError)


def test_nan_is_refused_before_sending() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    client = mock_client(handler)
    try:
        with pytest.raises(ValueError, match="JSON"):
            client.request("POST", "/x", json={"x": float("nan")})
    finally:
        client.close()
    assert sent == []


def test_timeouts_are_passed_to_the_transport() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    client = mock_client(handler, connect_timeout=2.0, read_timeout=9.0)
    try:
        client.request("GET", "/a")
        client.request("GET", "/b", timeout=1.5)
        client.request("GET", "/c", timeout=30.0)
    finally:
        client.close()
    assert seen == [
        {"connect": 2.0, "read": 9.0, "write": 9.0, "pool": 2.0},
        {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5},
        {"connect": 2.0, "read": 30.0, "write": 30.0, "pool": 2.0},
    ]


def test_request_after_close_is_a_connection_error() -> None:
    client = mock_client(answering(200, json_body={}))
    client.request("GET", "/a")
    client.close()
    with pytest.raises(ApiConnectionError, match="closed"):
        client.request("GET", "/a")
    client.close()  # idempotent


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"api_key": "line\nbreak"}, "api_key"),
    ({"api_key": "caf\u00e9"}, "api_key"),
    ({"api_key": "k", "extra_headers": {"X-A": "a\r\nb"}}, "extra_headers"),
    ({"api_key": "k", "extra_headers": {"bad name": "v"}}, "extra_headers"),
])
def test_bad_header_values_are_config_errors(kwargs: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigError) as info:
        GalileoClient(api_url="https://api.test", **kwargs)
    assert info.value.option == option


def test_api_key_whitespace_is_stripped() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Galileo-API-Key"])
        return httpx.Response(200, json={})

    c = GalileoClient(api_url="https://api.test", api_key=f"  {KEY}\n",
                      transport=httpx.MockTransport(handler))
    try:
        c.request("GET", "/x")
    finally:
        c.close()
    assert seen == [KEY]


def test_repr_never_shows_the_key() -> None:
    client = GalileoClient(api_url="https://api.test/", api_key=KEY)
    assert repr(client) == "<GalileoClient api_url='https://api.test' api_key=set>"
    assert KEY not in repr(HttpExporter(client))
    anonymous = GalileoClient(api_url="http://localhost:8088", api_key=None)
    assert repr(anonymous) == "<GalileoClient api_url='http://localhost:8088' api_key=unset>"
    client.close()
    anonymous.close()


def test_httpx_is_not_imported_by_the_package() -> None:
    import subprocess
    import sys

    code = ("import sys, galileo_sessions, galileo_sessions._client; "
            "assert 'httpx' not in sys.modules, 'httpx imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ====================================================================== a real loopback server


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    port: int


@dataclass
class FakeGalileo:
    """Just enough of the Galileo API for resolve_target / send / patch."""

    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    log_streams: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 2
    conflict_on_create: bool = False
    counter: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any) -> tuple[int, Any]:
        if headers.get("galileo-api-key") != KEY:
            return 401, {"detail": f"Invalid API key: {headers.get('galileo-api-key')}"}
        if method == "GET" and path == "/projects":
            name = query.get("project_name")
            return 200, [p for p in self.projects if p["name"] == name]
        if method == "POST" and path == "/projects":
            project = {"id": self.new_id("proj"), "name": body["name"], "type": body["type"]}
            self.projects.append(project)
            if self.conflict_on_create:
                return 409, {"detail": "project already exists"}
            return 200, project
        if m := re.fullmatch(r"/projects/([^/]+)/log_streams/paginated", path):
            streams = self.log_streams.get(m[1], [])
            start = int(query["starting_token"])
            page = streams[start:start + self.page_size]
            more = start + self.page_size < len(streams)
            return 200, {"starting_token": start, "limit": int(query["limit"]),
                         "paginated": more,
                         "next_starting_token": start + self.page_size if more else None,
                         "log_streams": page}
        if (m := re.fullmatch(r"/projects/([^/]+)/log_streams", path)) and method == "POST":
            stream = {"id": self.new_id("ls"), "name": body["name"], "project_id": m[1]}
            self.log_streams.setdefault(m[1], []).append(stream)
            return 200, stream
        if (m := re.fullmatch(r"/v2/projects/([^/]+)/sessions", path)) and method == "POST":
            return 200, {"id": self.new_id("sess"), "name": body.get("name"),
                         "project_id": m[1], "project_name": "p"}
        if (m := re.fullmatch(r"/v2/projects/([^/]+)/traces", path)) and method == "POST":
            if not body.get("traces"):
                return 422, {"detail": [{"loc": ["body", "traces"], "msg": "too short",
                                         "type": "too_short"}]}
            return 200, {"project_id": m[1], "records_count": len(body["traces"])}
        if (m := re.fullmatch(r"/v2/projects/([^/]+)/(traces|spans)/([^/]+)", path)) \
                and method == "PATCH":
            return 200, {"project_id": m[1], "records_count": 1, "id": m[3]}
        if path == "/empty":
            return 204, None
        return 404, {"detail": "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake.lock:
            fake.requests.append(Seen(self.command, split.path, query, headers, body,
                                      self.client_address[1]))
            status, answer = fake.handle(self.command, split.path, query, headers, body)
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGalileo


@pytest.fixture
def server() -> Iterator[FakeGalileo]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.fake = FakeGalileo(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd.fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def client(server: FakeGalileo) -> Iterator[GalileoClient]:
    c = GalileoClient(api_url=server.url, api_key=KEY)
    try:
        yield c
    finally:
        c.close()


def requests_summary(server: FakeGalileo) -> list[tuple[str, str, dict[str, str], Any]]:
    return [(r.method, r.path, r.query, r.body) for r in server.requests]


def test_resolve_creates_project_and_finds_log_stream_on_page_two(
        server: FakeGalileo, client: GalileoClient) -> None:
    server.log_streams["proj-1"] = [{"id": "ls-a", "name": "a"}, {"id": "ls-b", "name": "b"},
                                    {"id": "ls-x", "name": "default-ish"},
                                    {"id": LSID, "name": "default"}]
    exporter: Exporter = HttpExporter(client)  # mypy checks the protocol is implemented
    assert exporter.kind == "http"
    target = exporter.resolve_target()
    assert target == Target("proj-1", log_stream_id=LSID)
    assert target.envelope() == {"log_stream_id": LSID}
    assert requests_summary(server) == [
        ("GET", "/projects", {"project_name": "default", "type": "gen_ai"}, None),
        ("POST", "/projects", {}, {"name": "default", "type": "gen_ai",
                                   "create_example_templates": False}),
        ("GET", "/projects/proj-1/log_streams/paginated",
         {"include_counts": "false", "starting_token": "0", "limit": "500"}, None),
        ("GET", "/projects/proj-1/log_streams/paginated",
         {"include_counts": "false", "starting_token": "2", "limit": "500"}, None),
    ]
    version = galileo_sessions.__version__
    for seen in server.requests:
        assert seen.headers["galileo-api-key"] == KEY
        assert re.fullmatch(rf"galileo-sessions/{re.escape(version)} "
                            rf"httpx/{re.escape(httpx.__version__)} python/3\.\d+\.\d+\S*",
                            seen.headers["user-agent"])
        assert seen.headers["x-galileo-sdk"] == f"galileo-sessions/{version}"
        assert seen.headers["accept"] == "application/json"
        assert seen.headers["content-type"] == "application/json"
    # one keep-alive connection for the whole resolution
    assert len({r.port for r in server.requests}) == 1

    # cached: a second resolve sends nothing
    assert exporter.resolve_target() is target
    assert len(server.requests) == 4


def test_resolve_finds_project_and_creates_log_stream(
        server: FakeGalileo, client: GalileoClient) -> None:
    server.projects = [{"id": PID, "name": "support bot", "type": "gen_ai"}]
    server.log_streams[PID] = [{"id": "ls-a", "name": "a"}, {"id": "ls-b", "name": "b"},
                               {"id": "ls-c", "name": "c"}]
    exporter = HttpExporter(client, project="support bot", log_stream="prod")
    assert exporter.resolve_target() == Target(PID, log_stream_id="ls-1")
    assert requests_summary(server) == [
        ("GET", "/projects", {"project_name": "support bot", "type": "gen_ai"}, None),
        ("GET", f"/projects/{PID}/log_streams/paginated",
         {"include_counts": "false", "starting_token": "0", "limit": "500"}, None),
        ("GET", f"/projects/{PID}/log_streams/paginated",
         {"include_counts": "false", "starting_token": "2", "limit": "500"}, None),
        ("POST", f"/projects/{PID}/log_streams", {}, {"name": "prod"}),
    ]


def test_resolve_with_ids_makes_no_request(server: FakeGalileo, client: GalileoClient) -> None:
    exporter = HttpExporter(client, project_id=PID, log_stream_id=LSID)
    assert exporter.resolve_target() == Target(PID, log_stream_id=LSID)
    assert server.requests == []


def test_experiment_target_and_send(server: FakeGalileo, client: GalileoClient) -> None:
    exporter = HttpExporter(client, project_id=PID, experiment_id=EXPID)
    target = exporter.resolve_target()
    assert target == Target(PID, experiment_id=EXPID)
    assert server.requests == []

    body = {**target.envelope(), "name": "chat", "logging_method": "python_client",
            "reliable": True}
    answer = exporter.send(Route.SESSIONS, target, body, idempotency_key="idem-1")
    assert answer == {"id": "sess-1", "name": "chat", "project_id": PID, "project_name": "p"}
    [seen] = server.requests
    assert (seen.method, seen.path, seen.body) == ("POST", f"/v2/projects/{PID}/sessions", body)
    assert seen.body["experiment_id"] == EXPID
    assert "log_stream_id" not in seen.body
    assert seen.headers["idempotency-key"] == "idem-1"
    assert seen.headers["galileo-api-key"] == KEY


def test_experiment_with_project_name_resolves_the_project_only(
        server: FakeGalileo, client: GalileoClient) -> None:
    server.projects = [{"id": PID, "name": "default", "type": "gen_ai"}]
    target = HttpExporter(client, experiment_id=EXPID).resolve_target()
    assert target == Target(PID, experiment_id=EXPID)
    assert [r.path for r in server.requests] == ["/projects"]


def test_send_without_idempotency_key_and_patch(server: FakeGalileo,
                                                client: GalileoClient) -> None:
    exporter = HttpExporter(client, project_id=PID, log_stream_id=LSID)
    target = exporter.resolve_target()
    body = {"log_stream_id": LSID, "traces": [{"type": "trace", "id": "t1"}]}
    assert exporter.send(Route.TRACES, target, body) == {"project_id": PID, "records_count": 1}
    assert exporter.patch("spans", target, "span-1", {"span_id": "span-1", "output": "ok"}) == {
        "project_id": PID, "records_count": 1, "id": "span-1"}
    first, second = server.requests
    assert (first.method, first.path, first.body) == ("POST", f"/v2/projects/{PID}/traces", body)
    assert "idempotency-key" not in first.headers
    assert (second.method, second.path, second.body) == (
        "PATCH", f"/v2/projects/{PID}/spans/span-1", {"span_id": "span-1", "output": "ok"})


def test_send_refused_body_raises_status_error(server: FakeGalileo,
                                                client: GalileoClient) -> None:
    exporter = HttpExporter(client, project_id=PID, log_stream_id=LSID)
    with pytest.raises(ApiStatusError) as info:
        exporter.send(Route.TRACES, exporter.resolve_target(), {"traces": []})
    assert info.value.status_code == 422
    assert str(info.value) == (f"POST /v2/projects/{PID}/traces -> 422 Unprocessable Entity: "
                               "body.traces: too short")


def test_non_gen_ai_project_is_refused(server: FakeGalileo, client: GalileoClient) -> None:
    server.projects = [{"id": PID, "name": "default", "type": "prompt_evaluation"}]
    with pytest.raises(ConfigError, match=r"not a Galileo 2\.0"):
        HttpExporter(client).resolve_target()


def test_project_created_concurrently_elsewhere(server: FakeGalileo,
                                                client: GalileoClient) -> None:
    server.conflict_on_create = True  # the POST loses the race: 409, the project now exists
    server.log_streams["proj-1"] = [{"id": LSID, "name": "default"}]
    assert HttpExporter(client).resolve_target() == Target("proj-1", log_stream_id=LSID)
    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", "/projects"), ("POST", "/projects"), ("GET", "/projects"),
        ("GET", "/projects/proj-1/log_streams/paginated")]


def test_failed_resolution_is_not_cached(server: FakeGalileo) -> None:
    bad = GalileoClient(api_url=server.url, api_key="wrong-key-123")
    try:
        with pytest.raises(ApiStatusError) as info:
            HttpExporter(bad).resolve_target()
        assert info.value.status_code == 401
    finally:
        bad.close()

    server.projects = [{"id": PID, "name": "default", "type": "gen_ai"}]
    server.log_streams[PID] = [{"id": LSID, "name": "default"}]
    good = GalileoClient(api_url=server.url, api_key=KEY)
    exporter = HttpExporter(good)
    try:
        assert exporter.resolve_target() == Target(PID, log_stream_id=LSID)
    finally:
        exporter.close()


def test_concurrent_resolution_happens_once(server: FakeGalileo,
                                            client: GalileoClient) -> None:
    server.log_streams["proj-1"] = [{"id": LSID, "name": "default"}]
    exporter = HttpExporter(client)
    barrier = threading.Barrier(8)
    results: list[Target] = []

    def resolve() -> None:
        barrier.wait()
        results.append(exporter.resolve_target())

    threads = [threading.Thread(target=resolve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [Target("proj-1", log_stream_id=LSID)] * 8
    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", "/projects"), ("POST", "/projects"),
        ("GET", "/projects/proj-1/log_streams/paginated")]


def test_error_messages_never_contain_the_key(server: FakeGalileo) -> None:
    # The fake server echoes a wrong key back in its 401 body, as a careless gateway might.
    wrong = "gsk-wrong-key-9999"
    c = GalileoClient(api_url=server.url, api_key=wrong)
    try:
        assert wrong not in repr(c)
        with pytest.raises(ApiStatusError) as info:
            c.request("GET", "/projects", params={"project_name": "x"})
    finally:
        c.close()
    err = info.value
    assert wrong not in str(err) and wrong not in repr(err) and wrong not in repr(err.body)
    assert str(err) == "GET /projects -> 401 Unauthorized: Invalid API key: [REDACTED]"
    assert err.url == f"{server.url}/projects?project_name=x"


def test_connection_refused_is_a_connection_error() -> None:
    # A port nobody listens on: bind one, close it, and use it.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = GalileoClient(api_url=f"http://127.0.0.1:{port}", api_key=KEY, connect_timeout=2.0)
    try:
        with pytest.raises(ApiConnectionError) as info:
            c.request("GET", "/projects")
    finally:
        c.close()
    assert not isinstance(info.value, ApiTimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert_no_key(info.value)


def test_empty_response_is_none(client: GalileoClient) -> None:
    assert client.request("GET", "/empty") is None


def test_extra_headers_cannot_override_reserved_headers(server: FakeGalileo) -> None:
    extra = parse_extra_headers(json.dumps({
        "galileo-api-key": "attacker-key",
        "USER-AGENT": "spoofed",
        "x-galileo-sdk": "spoofed",
        "Content-Type": "text/plain",
        "X-Gateway-Token": "gw-1",
    }))
    c = GalileoClient(api_url=server.url, api_key=KEY, extra_headers=extra)
    try:
        c.request("GET", "/projects", params={"project_name": "default", "type": "gen_ai"})
    finally:
        c.close()
    [seen] = server.requests
    assert seen.headers["galileo-api-key"] == KEY
    assert seen.headers["user-agent"].startswith("galileo-sessions/")
    assert seen.headers["x-galileo-sdk"].startswith("galileo-sessions/")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-gateway-token"] == "gw-1"
    assert "attacker-key" not in seen.headers.values()


def test_no_key_header_without_a_key(server: FakeGalileo) -> None:
    c = GalileoClient(api_url=server.url, api_key=None)
    try:
        with pytest.raises(ApiStatusError):
            c.request("GET", "/projects")
    finally:
        c.close()
    assert "galileo-api-key" not in server.requests[0].headers


def test_reset_after_fork_opens_a_new_connection(server: FakeGalileo,
                                                 client: GalileoClient) -> None:
    client.request("GET", "/empty")
    client.request("GET", "/empty")
    client.reset_after_fork()
    client.request("GET", "/empty")
    ports = [r.port for r in server.requests]
    assert ports[0] == ports[1]  # keep-alive
    assert ports[2] != ports[0]  # a fresh client, fresh connection
    # No real fork happened: the "abandoned" client is this process's own, so close it.
    from galileo_sessions import _client

    abandoned = _client._abandoned_clients.pop()
    abandoned.close()  # type: ignore[attr-defined]
