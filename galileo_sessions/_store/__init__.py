"""The local store: Galileo sessions, traces and spans in one SQLite file.

It backs the embedded default exporter (no credentials needed) and the dev server, which both
call the same ``Store`` methods with Galileo's exact request bodies. Standard library only, as
it is part of the core.
"""

from __future__ import annotations

from galileo_sessions._store.store import DEFAULT_STORE_PATH, Store

__all__ = ["DEFAULT_STORE_PATH", "Store"]
