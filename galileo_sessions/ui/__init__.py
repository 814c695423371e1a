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

from galileo_sessions.ui.routes import build_router
from galileo_sessions.ui.runner import UiServer, cli_ui, create_ui_app

__all__ = ["UiServer", "build_router", "cli_ui", "create_ui_app"]
