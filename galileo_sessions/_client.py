"""The one seam between galileo_sessions and httpx.

Everything that touches the network goes through ``GalileoClient.request``: it owns the base
URL, the auth and identification headers, the timeouts, and the translation of httpx's
exceptions and non-2xx answers into our own ``ApiError`` tree (``raise ... from exc``), so no
other module has to know httpx exists. Retries are *not* done here: they belong to the
pipeline, which knows whether a request may be repeated and how long the caller can wait.

Two promises hold for every path through this module:

* The API key never leaves through a message, ``repr``, log line or error attribute. It is only
  ever placed in the ``Galileo-API-Key`` header, and anything the server sends back (bodies,
  error details) is scrubbed of it before it is stored on an exception.
* TLS verification is always on. There is deliberately no option to turn it off; a proxy or a
  test double is plugged in with ``transport=`` instead.

httpx is imported lazily (it costs ~90 ms): the configuration code calls ``derive_api_url``
and ``parse_extra_headers`` even when records go to the local store and httpx is never used.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from galileo_sessions.exceptions import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    ApiTimeoutError,
    ConfigError,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_CONSOLE_URL",
    "GalileoClient",
    "derive_api_url",
    "parse_extra_headers",
    "parse_retry_after",
]

logger = logging.getLogger("galileo_sessions.client")

DEFAULT_CONSOLE_URL = "https://app.galileo.ai/"
_LOCAL_API_URL = "http://localhost:8088"
_SAAS_API_URL = "https://api.galileo.ai"

API_KEY_HEADER = "Galileo-API-Key"
_RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (API_KEY_HEADER, "User-Agent", "X-Galileo-SDK", "Content-Type", "Accept")
)
# RFC 9110 token characters: anything else in a header name is a typo or an injection attempt.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_REDACTED = "[REDACTED]"

# Error bodies are kept on ApiStatusError for the pipeline's log line; a few KB is enough to
# show the server's reason, and a cap keeps a misbehaving server from bloating memory/logs.
_ERROR_BODY_CAP = 4096
_DETAIL_CAP = 300

# Clients abandoned by reset_after_fork(). Their sockets are shared with the parent process:
# closing them here would shut down the parent's connections, and letting them be garbage
# collected would raise ResourceWarnings, so the child simply keeps them alive and unused.
_abandoned_clients: list[object] = []


# --------------------------------------------------------------------------- configuration


def _has_scheme(url: str) -> bool:
    return "://" in url


def _is_local(url: str) -> bool:
    return "localhost" in url or "127.0.0.1" in url


def derive_api_url(*, api_url: str | None, console_url: str | None) -> str:
    """Return the API base URL (no trailing slash), following galileo-wire.md section 1.1.

    An explicit ``api_url`` wins. Otherwise it is derived from the console URL (default
    ``https://app.galileo.ai/``): a local console maps to ``http://localhost:8088``,
    ``app.galileo.ai`` to ``https://api.galileo.ai``, and any other host has ``console``
    replaced by ``api``. A URL without a scheme gets ``https://``, except an explicit local
    ``api_url`` (``localhost:8088`` is the dev server, which speaks plain HTTP).
    """
    explicit = (api_url or "").strip()
    if explicit:
        if not _has_scheme(explicit):
            explicit = ("http://" if _is_local(explicit) else "https://") + explicit
        return _checked_url("api_url", explicit.rstrip("/"))

    console = (console_url or "").strip() or DEFAULT_CONSOLE_URL
    if not _has_scheme(console):
        console = "https://" + console
    _checked_url("console_url", console)
    if _is_local(console):
        return _LOCAL_API_URL
    if "app.galileo.ai" in console:
        return _SAAS_API_URL
    return _checked_url("console_url", console.replace("console", "api").rstrip("/"))


def _checked_url(option: str, url: str) -> str:
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https"):
        raise ConfigError(option, f"URL scheme must be http or https, got {scheme!r}")
    if not rest.split("/", 1)[0]:
        raise ConfigError(option, "URL has no host")
    return url


def parse_extra_headers(raw: str | None) -> dict[str, str]:
    """Parse ``GALILEO_EXTRA_HEADERS`` (a JSON object of header name to value).

    Blank means none. Numbers are accepted as values and stringified; anything else that is not
    a string is refused, as are names that are not valid header tokens and values holding line
    breaks. Messages name the offending header but never echo values (they are often secrets).
    """
    if raw is None or not raw.strip():
        return {}
    option = "GALILEO_EXTRA_HEADERS"
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(option, f"not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(parsed, dict):
        raise ConfigError(option, f"must be a JSON object, got {type(parsed).__name__}")
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        if not _HEADER_NAME_RE.match(name):
            raise ConfigError(option, f"invalid header name {name!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(
                option, f"header {name!r}: value must be a string, got {type(value).__name__}"
            )
        text = value if isinstance(value, str) else str(value)
        if not _valid_header_value(text):
            raise ConfigError(
                option, f"header {name!r}: value must be printable ASCII (no line breaks)"
            )
        headers[name] = text
    return headers


def _valid_header_value(value: str) -> bool:
    # httpx encodes header values as ASCII; control characters would allow header injection.
    return value.isascii() and all(c == "\t" or " " <= c < "\x7f" for c in value)


# --------------------------------------------------------------------------- error helpers


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, _REDACTED) if secret else text


def _scrub_obj(obj: Any, secret: str | None) -> Any:
    if not secret:
        return obj
    if isinstance(obj, str):
        return _scrub(obj, secret)
    if isinstance(obj, list):
        return [_scrub_obj(item, secret) for item in obj]
    if isinstance(obj, dict):
        return {_scrub(str(k), secret): _scrub_obj(v, secret) for k, v in obj.items()}
    return obj


def _cap_body(body: Any, text: str) -> Any:
    """Keep an error body small: JSON as is when small, else the useful part, else text."""
    if body is None:
        return text[:_ERROR_BODY_CAP] + ("...[truncated]" if len(text) > _ERROR_BODY_CAP else "")
    if len(text) <= _ERROR_BODY_CAP:
        return body
    # FastAPI's 422 items echo the offending input, which can be the whole batch: keep the
    # locations and messages, which are what anyone reading the error needs.
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        items = [
            {k: v for k, v in item.items() if k in ("loc", "msg", "type")}
            if isinstance(item, dict) else item
            for item in body["detail"][:10]
        ]
        slim = {"detail": items, "truncated": True}
        if len(json.dumps(slim, default=str)) <= _ERROR_BODY_CAP:
            return slim
    return text[:_ERROR_BODY_CAP] + "...[truncated]"


def _detail_of(body: Any) -> str:
    """The server's own explanation, in one short line."""
    detail: Any = body
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if key in body:
                detail = body[key]
                break
    if isinstance(detail, list) and detail:
        first = detail[0]
        if isinstance(first, dict) and "msg" in first:
            where = ".".join(str(p) for p in first.get("loc", ()))
            text = f"{where}: {first['msg']}" if where else str(first["msg"])
        else:
            text = json.dumps(first, default=str) if not isinstance(first, str) else first
        if len(detail) > 1:
            text += f" (and {len(detail) - 1} more)"
    elif isinstance(detail, str):
        text = detail
    elif detail is None:
        text = ""
    else:
        text = json.dumps(detail, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_CAP else text[: _DETAIL_CAP - 3] + "..."


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete forms may parse naive
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(0.0, seconds)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


# --------------------------------------------------------------------------- the client


class GalileoClient:
    """A thread-safe, keep-alive HTTP client for the Galileo API (or the dev server).

    ``request`` returns the decoded JSON body and raises the ``ApiError`` family; nothing else
    escapes except ``TypeError``/``ValueError`` for a ``json`` argument that cannot be encoded
    (NaN and infinities are refused, as JSON has no spelling for them).
    """

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str | None,
        extra_headers: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._api_key = (api_key or "").strip() or None
        if self._api_key is not None and not _valid_header_value(self._api_key):
            raise ConfigError("api_key", "must be printable ASCII (no line breaks)")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._transport = transport
        self._headers = self._build_headers(extra_headers or {})
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._pid = os.getpid()
        self._closed = False

    @property
    def api_url(self) -> str:
        return self._api_url

    def __repr__(self) -> str:
        return (
            f"<GalileoClient api_url={self._api_url!r} "
            f"api_key={'set' if self._api_key else 'unset'}>"
        )

    def _build_headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        import httpx

        from galileo_sessions import __version__

        ours: dict[str, str] = {
            "User-Agent": (
                f"galileo-sessions/{__version__} httpx/{httpx.__version__} "
                f"python/{platform.python_version()}"
            ),
            "X-Galileo-SDK": f"galileo-sessions/{__version__}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if self._api_key:
            ours[API_KEY_HEADER] = self._api_key
        headers: dict[str, str] = {}
        for name, value in extra.items():
            if not _HEADER_NAME_RE.match(name) or not _valid_header_value(value):
                raise ConfigError("extra_headers", f"invalid header {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                logger.debug("extra header %r dropped: it would override a reserved header",
                             name)
                continue
            headers[name] = value
        headers.update(ours)
        return headers

    def _http(self) -> httpx.Client:
        """The live httpx client, created on first use (and anew in a forked child)."""
        if os.getpid() != self._pid:
            self.reset_after_fork()
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._closed:
                raise ApiConnectionError("the Galileo client is closed")
            if self._client is None:
                import httpx

                self._client = httpx.Client(
                    base_url=self._api_url,
                    headers=self._headers,
                    timeout=self._timeout(None),
                    verify=True,
                    follow_redirects=False,  # never carry the key to another host
                    transport=self._transport,
                )
            return self._client

    def _timeout(self, total: float | None) -> httpx.Timeout:
        import httpx

        if total is None:
            return httpx.Timeout(
                connect=self._connect_timeout, read=self._read_timeout,
                write=self._read_timeout, pool=self._connect_timeout,
            )
        connect = min(self._connect_timeout, total)
        return httpx.Timeout(connect=connect, read=total, write=total, pool=connect)

    def reset_after_fork(self) -> None:
        """Forget the parent's httpx client (without closing its sockets); a new one is lazy."""
        self._lock = threading.Lock()  # the parent's lock may have been held at fork time
        if self._client is not None:
            _abandoned_clients.append(self._client)
        self._client = None
        self._pid = os.getpid()

    def close(self) -> None:
        if os.getpid() != self._pid:
            self.reset_after_fork()  # never close sockets the parent still uses
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return the decoded JSON body, or None for an empty body.

        ``timeout`` (seconds) bounds connect, read and write for this call, for callers that
        must honour a deadline; the client's defaults apply otherwise.
        """
        import httpx

        method = method.upper()
        content = None
        if json is not None:
            content = _dumps(json)
        client = self._http()
        try:
            response = client.request(
                method,
                path,
                content=content,
                params=dict(params) if params is not None else None,
                headers=dict(headers) if headers is not None else None,
                timeout=self._timeout(timeout),
            )
        except httpx.TimeoutException as exc:
            self._fail(ApiTimeoutError, method, path, "timed out", exc)
        except (httpx.RequestError, OSError) as exc:
            self._fail(ApiConnectionError, method, path, "failed", exc)
        except RuntimeError as exc:
            if not self._closed:
                raise
            # close() ran on another thread while this request was being sent.
            self._fail(ApiConnectionError, method, path, "failed (client closed)", exc)
        url = _scrub(str(response.request.url), self._api_key)
        self._log_request_ids(response)
        data = response.content
        if not response.is_success:
            raise self._status_error(method, path, url, response)
        if not data.strip():
            return None
        try:
            return _scrub_obj(_loads(data), self._api_key)
        except ValueError as exc:
            raise ApiError(
                f"{method} {path}: the server answered {response.status_code} "
                "with a body that is not JSON", method=method, url=url,
            ) from exc

    def _fail(self, kind: type[ApiError], method: str, path: str, what: str,
              exc: BaseException) -> NoReturn:
        reason = _scrub(str(exc) or exc.__class__.__name__, self._api_key)
        url = _scrub(f"{self._api_url}{path}", self._api_key)
        raise kind(f"{method} {path} {what}: {exc.__class__.__name__}: {reason}",
                   method=method, url=url) from exc

    def _status_error(self, method: str, path: str, url: str,
                      response: httpx.Response) -> ApiStatusError:
        text = _scrub(response.content.decode("utf-8", errors="replace"), self._api_key)
        body: Any = None
        if text.strip():
            try:
                body = _scrub_obj(_loads(text), self._api_key)
            except ValueError:
                body = None
        detail = _detail_of(body if body is not None else text)
        body = _cap_body(body, text)
        status = response.status_code
        message = f"{method} {path} -> {status} {response.reason_phrase}".rstrip()
        if detail:
            message += f": {detail}"
        return ApiStatusError(
            _scrub(message, self._api_key),
            status_code=status,
            body=body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            method=method,
            url=url,
        )

    @staticmethod
    def _log_request_ids(response: httpx.Response) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            ids = {k: v for k, v in response.headers.items()
                   if k.lower().startswith("galileo-request-")}
            logger.debug("%s %s -> %s %s", response.request.method, response.request.url.path,
                         response.status_code, ids or "")


def _dumps(obj: Any) -> bytes:
    # Our own encoder so behaviour does not depend on the httpx version (0.27 let NaN through).
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def _loads(data: bytes | str) -> Any:
    return json.loads(data)
