"""The process-wide runtime: the active settings and pipeline, and its lifecycle.

``configure()`` builds a ``Runtime``; the first decorated call builds one from the
environment when ``configure`` was never called. The hot path reads the module global
``current`` once per call. ``atexit`` shuts the runtime down within its timeout, and after
``os.fork`` the child gets a fresh queue and worker (the parent keeps sending its own).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from ._config import Settings
from ._exporter import Exporter
from ._internal import internal_error, logger
from ._pipeline.stats import FlushResult
from .exceptions import ConfigError

if TYPE_CHECKING:
    from ._pipeline.pipeline import Pipeline

__all__ = ["Runtime", "configure", "current", "flush", "get", "shutdown", "stats"]


class Runtime:
    """Settings plus the pipeline built from them; read on every decorated call."""

    __slots__ = ("capture_input", "capture_output", "chain_store", "enabled", "max_bytes",
                 "otel", "otel_hook", "pipeline", "redact", "reliable", "settings",
                 "wait_timeout")

    def __init__(self, settings: Settings, pipeline: Pipeline | None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.enabled = settings.enabled and pipeline is not None
        self.capture_input = settings.capture_input
        self.capture_output = settings.capture_output
        self.max_bytes = settings.max_field_bytes
        self.redact = settings.redact
        self.reliable = settings.mode == "reliable"
        self.otel = settings.otel
        self.otel_hook: Any = None  # mirrors spans as OTel spans (configure(otel=True))
        if settings.otel and self.enabled:
            from ._otel_hook import OtelHook

            self.otel_hook = OtelHook.create()
        self.wait_timeout = settings.shutdown_timeout
        if settings.chain_store is not None:
            self.chain_store: Any = settings.chain_store
        else:
            from ._chainstore import InMemoryChainStore

            self.chain_store = InMemoryChainStore()


current: Runtime | None = None
_lock = threading.RLock()
_atexit_registered = False


def build_exporter(settings: Settings) -> Exporter:
    """The exporter for ``settings``: the local store, or HTTP to Galileo / the dev server."""
    if settings.destination == "local":
        from ._pipeline.local import LocalExporter

        return LocalExporter(settings.store, project=settings.project,
                             log_stream=settings.log_stream, project_id=settings.project_id,
                             log_stream_id=settings.log_stream_id,
                             experiment_id=settings.experiment_id)
    from ._client import GalileoClient, derive_api_url
    from ._http_exporter import HttpExporter

    client = GalileoClient(
        api_url=derive_api_url(api_url=settings.api_url, console_url=settings.console_url),
        api_key=settings.api_key, extra_headers=settings.extra_headers,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        transport=settings.transport)
    return HttpExporter(client, project=settings.project, project_id=settings.project_id,
                        log_stream=settings.log_stream, log_stream_id=settings.log_stream_id,
                        experiment_id=settings.experiment_id)


def spool_directory(settings: Settings) -> str:
    """The spool's folder: ``spool_dir``, else ``spool/`` beside the local store file."""
    if settings.spool_dir:
        return settings.spool_dir
    return os.path.join(os.path.dirname(settings.store) or ".", "spool")


def build_pipeline(settings: Settings, exporter: Exporter) -> Pipeline:
    from ._pipeline.pipeline import Pipeline
    from ._pipeline.spool import Spool

    return Pipeline(exporter, reliable_timeout=settings.reliable_timeout,
                    flush_interval=settings.flush_interval,
                    max_batch_records=settings.max_batch_records,
                    max_batch_bytes=settings.max_batch_bytes,
                    max_queue_bytes=settings.max_queue_bytes,
                    spool=Spool(spool_directory(settings), settings.spool_max_bytes))


def install(runtime: Runtime) -> Runtime | None:
    """Make ``runtime`` current; return the previous one (not shut down)."""
    global current, _atexit_registered
    with _lock:
        previous, current = current, runtime
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
    return previous


def configure(**options: Any) -> None:
    """Validate ``options`` (over the environment) and replace the pipeline.

    The old pipeline is flushed and shut down first, within its shutdown timeout.
    """
    settings = Settings.from_options(options)
    runtime = _build(settings)
    previous = install(runtime)
    if previous is not None and previous.pipeline is not None:
        previous.pipeline.shutdown(previous.settings.shutdown_timeout)


def _build(settings: Settings) -> Runtime:
    if not settings.enabled:
        return Runtime(settings, None)
    return Runtime(settings, build_pipeline(settings, build_exporter(settings)))


def get() -> Runtime:
    """The current runtime, configuring from the environment on first use."""
    runtime = current
    if runtime is not None:
        return runtime
    with _lock:
        if current is not None:
            return current
        try:
            settings = Settings.from_options({})
            runtime = _build(settings)  # builds the client: it checks the key and URL too
        except ConfigError as exc:
            logger.error("galileo_sessions: bad configuration in the environment (%s); tracing "
                         "is disabled until configure() is called with valid values", exc)
            runtime = Runtime(Settings(enabled=False), None)
        except Exception as exc:
            internal_error("configure from environment", exc)
            runtime = Runtime(Settings(enabled=False), None)
        install(runtime)
        return runtime


def flush(timeout: float | None = None) -> FlushResult:
    runtime = current
    if runtime is None or runtime.pipeline is None:
        return FlushResult()
    return runtime.pipeline.flush(timeout)


def shutdown(timeout: float = 5.0) -> FlushResult:
    """Flush within ``timeout`` and stop; the next decorated call configures afresh."""
    global current
    with _lock:
        runtime, current = current, None
    if runtime is None or runtime.pipeline is None:
        return FlushResult()
    return runtime.pipeline.shutdown(timeout)


def stats() -> dict[str, int]:
    runtime = current
    if runtime is None or runtime.pipeline is None:
        return {"enqueued": 0, "sent": 0, "retried": 0, "failed": 0, "dropped": 0,
                "spooled": 0, "queue_bytes": 0, "pending": 0}
    return runtime.pipeline.stats.snapshot()


def _at_exit() -> None:
    runtime = current
    if runtime is None or runtime.pipeline is None:
        return
    try:
        result = shutdown(runtime.settings.shutdown_timeout)
        if result.pending or result.failed or result.dropped:
            logger.warning("galileo_sessions at exit: %d records not delivered (%d pending, "
                           "%d failed, %d dropped); last error: %s",
                           result.pending + result.failed + result.dropped, result.pending,
                           result.failed, result.dropped, result.last_error)
    except Exception as exc:  # never let exit hang or raise
        logger.log(logging.DEBUG, "galileo_sessions exit error: %r", exc)


def _after_fork_in_child() -> None:
    runtime = current
    if runtime is not None and runtime.pipeline is not None:
        runtime.pipeline.reset_after_fork()
        reset = getattr(getattr(runtime.pipeline.exporter, "client", None),
                        "reset_after_fork", None)
        if callable(reset):
            reset()


os.register_at_fork(after_in_child=_after_fork_in_child)

