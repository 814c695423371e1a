"""The ``galileo-sessions`` command: look at recorded sessions, or run the dev server.

Why it is shaped this way: loading (a ``Source``: the local store file, or a running dev
server with ``--server URL``) is kept apart from rendering (pure functions in
``_store.render``), so both print the same way. Every failure a user can cause (no store yet, a
corrupt file, an unknown id) ends in one readable line and exit status 1, never a traceback.
The CLI never reads or prints API keys.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from galileo_sessions._store import DEFAULT_STORE_PATH, Store
from galileo_sessions._store.render import render_session, render_sessions, short_id, to_ascii

__all__ = ["main"]

STORE_ENV = "GALILEO_SESSIONS_STORE"
SERVER_EXTRA_HINT = "the dev server needs the server extra: pip install 'galileo-sessions[server]'"


class CliError(Exception):
    """A problem to report in one line (exit status 1)."""


class Source(Protocol):
    """Where the CLI reads records from; each method returns the read routes' dict shapes."""

    def sessions(self, limit: int) -> list[dict[str, Any]]: ...

    def session(self, id_or_prefix: str) -> dict[str, Any]: ...

    def totals(self) -> dict[str, int] | None: ...

    def close(self) -> None: ...


class StoreSource:
    """Reads the local SQLite store. Refuses to create a missing file (that would hide typos)."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise CliError(
                f"no local store at {path}: nothing has been recorded there yet. Run your "
                f"program without GALILEO_API_KEY to record locally, or point --store (or "
                f"${STORE_ENV}) at the right file.")
        try:
            self._store = Store(path)
        except (sqlite3.Error, OSError) as exc:
            raise CliError(f"cannot read the local store {path}: {exc}") from exc

    def sessions(self, limit: int) -> list[dict[str, Any]]:
        return self._store.list_sessions(limit=limit)

    def session(self, id_or_prefix: str) -> dict[str, Any]:
        matches = self._store.find_sessions_by_prefix(id_or_prefix, limit=20)
        exact = [m for m in matches if m["id"] == id_or_prefix.strip().lower()]
        if exact:
            matches = exact
        if not matches or not id_or_prefix.strip():
            raise CliError(f"no session matches {id_or_prefix!r} (see `galileo-sessions "
                           "sessions` for the ids)")
        if len(matches) > 1:
            listed = ", ".join(short_id(m["id"]) + (f" ({m['name']})" if m.get("name") else "")
                               for m in matches[:5])
            raise CliError(f"{id_or_prefix!r} matches {len(matches)} sessions ({listed}); "
                           "give more characters of the id")
        found = matches[0]
        return self._store.get_session(found["project_id"], found["id"])

    def totals(self) -> dict[str, int] | None:
        return self._store.counts()

    def close(self) -> None:
        self._store.close()


class ServerSource:
    """Reads a running dev server (or any Galileo-compatible API) through its public routes."""

    def __init__(self, url: str, api_key: str | None) -> None:
        from galileo_sessions._client import GalileoClient
        from galileo_sessions.exceptions import ApiError

        self._errors: tuple[type[Exception], ...] = (ApiError,)
        self._client = GalileoClient(api_url=url, api_key=api_key)
        self._url = url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self._client.request(method, path, json=body)
        except self._errors as exc:
            raise CliError(f"cannot read {self._url}: {exc}") from exc

    def _project_ids(self) -> list[str]:
        data = self._call("GET", "/projects/all")
        items = data.get("projects", []) if isinstance(data, dict) else data
        return [str(p["id"]) for p in items or () if isinstance(p, dict) and "id" in p]

    def _search(self, project_id: str, limit: int) -> list[dict[str, Any]]:
        newest_first = {"column_id": "created_at", "ascending": False, "sort_type": "column"}
        body = {"limit": limit, "starting_token": 0, "sort": newest_first}
        data = self._call("POST", f"/v2/projects/{project_id}/sessions/search", body)
        records = data.get("records", []) if isinstance(data, dict) else []
        return [dict(r, project_id=r.get("project_id", project_id)) for r in records]

    def sessions(self, limit: int) -> list[dict[str, Any]]:
        found = [r for pid in self._project_ids() for r in self._search(pid, limit)]
        found.sort(key=lambda r: str(r.get("created_at", "")), reverse=True)
        return found[:limit]

    def session(self, id_or_prefix: str) -> dict[str, Any]:
        prefix = id_or_prefix.strip().lower()
        matches = [r for r in self.sessions(1000) if str(r["id"]).startswith(prefix)] \
            if prefix else []
        if not matches:
            raise CliError(f"no session on {self._url} matches {id_or_prefix!r}")
        if len(matches) > 1 and not any(m["id"] == prefix for m in matches):
            raise CliError(f"{id_or_prefix!r} matches {len(matches)} sessions; give more "
                           "characters of the id")
        found = next((m for m in matches if m["id"] == prefix), matches[0])
        data = self._call("GET", f"/v2/projects/{found['project_id']}/sessions/{found['id']}")
        if not isinstance(data, dict):
            raise CliError(f"{self._url} answered an unexpected session shape")
        return data

    def totals(self) -> dict[str, int] | None:
        return None

    def close(self) -> None:
        self._client.close()


def store_path(option: str | None) -> Path:
    """``--store``, else ``$GALILEO_SESSIONS_STORE``, else ``.galileo_sessions/store.db``."""
    return Path(option or os.environ.get(STORE_ENV) or DEFAULT_STORE_PATH)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="PATH",
                        help=f"local store file (default: ${STORE_ENV} or {DEFAULT_STORE_PATH})")
    common.add_argument("--server", metavar="URL",
                        help="read a running dev server (or Galileo-compatible API) instead")
    common.add_argument("--api-key", metavar="KEY",
                        help="API key for --server (default: $GALILEO_API_KEY)")
    parser = argparse.ArgumentParser(
        prog="galileo-sessions",
        description="Inspect sessions recorded by galileo_sessions, or run the dev server.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    listing = sub.add_parser("sessions", parents=[common],
                             help="list session chains (newest first)")
    listing.add_argument("--limit", type=int, default=100, metavar="N",
                         help="read the N newest sessions (default 100)")
    show = sub.add_parser("show", parents=[common],
                          help="print a session's traces as trees")
    show.add_argument("session_id", metavar="SESSION_ID", help="a session id or unique prefix")
    sub.add_parser("serve", add_help=False,
                   help="run the Galileo-compatible dev server (see `serve --help`)")
    sub.add_parser("ui", add_help=False,
                   help="browse sessions and trace trees in a web page (see `ui --help`)")
    return parser


def _emit(lines: Sequence[str]) -> None:
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        "│├└─●…→".encode(encoding)
        plain = False
    except (UnicodeEncodeError, LookupError):
        plain = True
    for line in lines:
        print(to_ascii(line) if plain else line)


def _serve(argv_rest: list[str]) -> int:
    # Imported by name at call time: the server is an optional extra (FastAPI, uvicorn).
    try:
        server = importlib.import_module("galileo_sessions.server")
        cli_serve = server.cli_serve
    except ImportError:
        print(SERVER_EXTRA_HINT, file=sys.stderr)
        return 2
    return int(cli_serve(argv_rest))


def _ui(argv_rest: list[str]) -> int:
    # Imported by name at call time: the web view needs the server extra (FastAPI, Jinja2).
    try:
        ui = importlib.import_module("galileo_sessions.ui")
        cli_ui = ui.cli_ui
    except ImportError:
        print(SERVER_EXTRA_HINT.replace("the dev server", "the web view"), file=sys.stderr)
        return 2
    return int(cli_ui(argv_rest))


def _run(args: argparse.Namespace) -> int:
    source: Source
    if args.server:
        source = ServerSource(args.server, args.api_key or os.environ.get("GALILEO_API_KEY"))
    else:
        source = StoreSource(store_path(args.store))
    try:
        if args.command == "sessions":
            if args.limit < 1:
                raise CliError("--limit must be at least 1")
            _emit(render_sessions(source.sessions(args.limit), source.totals()))
        else:
            _emit(render_session(source.session(args.session_id)))
    finally:
        source.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``galileo-sessions``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        return _serve(args_list[1:])
    if args_list[:1] == ["ui"]:
        return _ui(args_list[1:])
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, or a usage error argparse already explained
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _run(args)
    except CliError as exc:
        print(f"galileo-sessions: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, OSError) as exc:
        print(f"galileo-sessions: cannot read the local store: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
