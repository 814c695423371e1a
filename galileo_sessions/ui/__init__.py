"""A local web view of the store: session chains and trace trees (extra ``[server]``).

Server-rendered pages (FastAPI + Jinja2 templates, a small CSS file and a few lines of
JavaScript for the live update, all shipped in this package: no build step, nothing loaded
from the network). ``galileo-sessions ui`` serves them alone; the dev server
(``galileo-sessions serve``) serves them at ``/`` next to the Galileo API routes.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the galileo_sessions web view needs its extra: pip install 'galileo-sessions[server]'"
    ) from exc

from typing import Any

from galileo_sessions.ui.routes import build_router

__all__ = ["UiServer", "build_router", "cli_ui", "create_ui_app"]


def __getattr__(name: str) -> Any:
    # The runner builds on the dev server's runner, whose app includes this package's router:
    # loading it on first use keeps ``server.app`` -> ``ui.routes`` free of an import cycle.
    if name in ("UiServer", "cli_ui", "create_ui_app"):
        from galileo_sessions.ui import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
