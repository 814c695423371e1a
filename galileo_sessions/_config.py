"""Settings: every option of ``configure()``, read from arguments or the environment, checked.

``Settings.from_options`` is the only place option values are parsed and validated, so the
rules (and the ``ConfigError`` messages naming the option) live in one spot. It does no I/O.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .exceptions import ConfigError

__all__ = ["ENV_VARS", "Mode", "Settings"]

Mode = Literal["reliable", "fire_and_forget"]
Redactor = Callable[[dict[str, Any]], dict[str, Any]]

DEFAULT_STORE = ".galileo_sessions/store.db"

# option -> environment variable (api.md section 1). Options without one are code-only.
ENV_VARS: dict[str, str] = {
    "api_key": "GALILEO_API_KEY",
    "api_url": "GALILEO_API_URL",
    "console_url": "GALILEO_CONSOLE_URL",
    "project": "GALILEO_PROJECT",
    "project_id": "GALILEO_PROJECT_ID",
    "log_stream": "GALILEO_LOG_STREAM",
    "log_stream_id": "GALILEO_LOG_STREAM_ID",
    "experiment_id": "GALILEO_EXPERIMENT_ID",
    "mode": "GALILEO_SESSIONS_MODE",
    "store": "GALILEO_SESSIONS_STORE",
    "spool_dir": "GALILEO_SESSIONS_SPOOL_DIR",
    "extra_headers": "GALILEO_EXTRA_HEADERS",
    "otel": "GALILEO_SESSIONS_OTEL",
}
_CAPTURE_ENV = "GALILEO_SESSIONS_CAPTURE"
_DISABLED_ENV = "GALILEO_SESSIONS_DISABLED"
_TRUE = {"1", "true", "yes", "on", "t"}
_FALSE = {"0", "false", "no", "off", "f", ""}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. ``api_key`` is kept out of ``repr``."""

    api_key: str | None = field(default=None, repr=False)
    api_url: str | None = None
    console_url: str | None = None
    project: str = "default"
    project_id: str | None = None
    log_stream: str = "default"
    log_stream_id: str | None = None
    experiment_id: str | None = None
    mode: Mode = "fire_and_forget"
    capture_input: bool = True
    capture_output: bool = True
    max_field_bytes: int = 100_000
    redact: Redactor | None = None
    enabled: bool = True
    transport: Any = None
    store: str = DEFAULT_STORE
    otel: bool = False
    extra_headers: Mapping[str, str] | None = field(default=None, repr=False)
    chain_store: Any = None
    reliable_timeout: float = 30.0
    shutdown_timeout: float = 5.0
    flush_interval: float = 0.5
    max_batch_records: int = 512
    max_batch_bytes: int = 4_000_000
    max_queue_bytes: int = 32_000_000
    spool_dir: str | None = None
    spool_max_bytes: int = 512_000_000
    connect_timeout: float = 5.0
    read_timeout: float = 10.0

    @property
    def destination(self) -> Literal["http", "local"]:
        """``http`` when an API key or URL is set, else the local store."""
        return "http" if (self.api_key or self.api_url) else "local"

    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, options: Mapping[str, Any],
                     environ: Mapping[str, str] | None = None) -> Settings:
        """Merge ``options`` over the environment and validate every value."""
        env = os.environ if environ is None else environ
        unknown = sorted(set(options) - cls.option_names())
        if unknown:
            raise ConfigError(unknown[0], "unknown option; valid options are "
                              + ", ".join(sorted(cls.option_names())))
        values: dict[str, Any] = {}
        for option, var in ENV_VARS.items():
            raw = env.get(var)
            if raw is not None and raw != "":
                values[option] = raw
        if env.get(_CAPTURE_ENV, "") != "":
            on = _parse_bool(_CAPTURE_ENV, env[_CAPTURE_ENV])
            values["capture_input"] = values["capture_output"] = on
        if env.get(_DISABLED_ENV, "") != "":
            values["enabled"] = not _parse_bool(_DISABLED_ENV, env[_DISABLED_ENV])
        values.update({k: v for k, v in options.items() if v is not None or k in _NULLABLE})
        return cls(**_validated(values))


_NULLABLE = {"redact", "transport", "chain_store", "spool_dir", "extra_headers"}


def _parse_bool(option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(option, f"expected a boolean (true/false, 1/0), got {value!r}")


def _positive(option: str, value: Any, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(option, f"expected a positive number, got {value!r}") from None
    # NaN passes "<= 0"; an infinite timeout could hang the process at exit.
    if isinstance(value, bool) or not number > 0 or number == float("inf"):
        raise ConfigError(option, f"expected a positive number, got {value!r}")
    return number


def _uuid(option: str, value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ConfigError(option, f"expected a UUID, got {value!r}") from None


def _text(option: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(option, f"expected a non-empty string, got {value!r}")
    if "\x00" in value or not _encodable(value):
        raise ConfigError(option, "expected text without NUL bytes or lone surrogates")
    return value.strip()


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _path(option: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(option, f"expected a path, got {type(value).__name__}")
    return _text(option, os.fspath(value)) if os.fspath(value) != "" else ""


def _url(option: str, value: Any) -> str:
    text = _text(option, value)
    if "://" in text and not text.startswith(("http://", "https://")):
        raise ConfigError(option, f"expected an http(s) URL, got {text!r}")
    return text


def _headers(value: Any) -> Mapping[str, str]:
    option = "extra_headers"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(option, "GALILEO_EXTRA_HEADERS must be a JSON object") from None
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(option, "expected a mapping of header names to string values")
    for name, text in value.items():  # the values are often secrets: never echo them
        if not _HEADER_NAME.match(name) or not (
                text.isascii() and all(c == "\t" or " " <= c < "\x7f" for c in text)):
            raise ConfigError(option, f"invalid header {name!r}: names are tokens, values "
                                      "printable ASCII (no line breaks)")
    return dict(value)


_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for option in ("api_key", "project", "log_stream", "store"):
        if option in out:
            out[option] = _text(option, out[option])
    if out.get("spool_dir") is not None:
        out["spool_dir"] = _path("spool_dir", out["spool_dir"])
    for option in ("api_url", "console_url"):
        if option in out:
            out[option] = _url(option, out[option])
    for option in ("project_id", "log_stream_id", "experiment_id"):
        if option in out:
            out[option] = _uuid(option, out[option])
    if out.get("experiment_id") and (out.get("log_stream_id") or "log_stream" in values):
        raise ConfigError("experiment_id", "give either a log stream or an experiment, not both")
    if "mode" in out:
        mode = str(out["mode"]).strip().lower().replace("-", "_")
        if mode not in ("reliable", "fire_and_forget"):
            raise ConfigError("mode", "expected 'reliable' or 'fire_and_forget', "
                                      f"got {out['mode']!r}")
        out["mode"] = mode
    for option in ("capture_input", "capture_output", "enabled", "otel"):
        if option in out:
            out[option] = _parse_bool(option, out[option])
    for option in ("max_field_bytes", "max_batch_records", "max_batch_bytes", "max_queue_bytes",
                   "spool_max_bytes"):
        if option in out:
            out[option] = _positive(option, out[option], int)
    if out.get("max_field_bytes", 100_000) < 64:
        raise ConfigError("max_field_bytes", "must be at least 64 bytes")
    for option in ("reliable_timeout", "shutdown_timeout", "flush_interval", "connect_timeout",
                   "read_timeout"):
        if option in out:
            out[option] = _positive(option, out[option], float)
    if out.get("redact") is not None and not callable(out["redact"]):
        raise ConfigError("redact", "expected a callable(record_dict) -> record_dict")
    if out.get("extra_headers") is not None:
        out["extra_headers"] = _headers(out["extra_headers"])
    chain_store = out.get("chain_store")
    if chain_store is not None and not (
            hasattr(chain_store, "get") and hasattr(chain_store, "set")):
        raise ConfigError("chain_store", "expected an object with get(key) and set(key, handle)")
    transport = out.get("transport")
    if transport is not None and not hasattr(transport, "handle_request"):
        raise ConfigError("transport", "expected an httpx.BaseTransport")
    return out
