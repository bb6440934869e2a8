"""The scenarios: which locustfile, against which example app, with which server flags.

A scenario may need a server feature that is optional or still to come (``--mount`` for
WSGI, ``--ws`` for WebSockets); ``missing()`` says what is absent from this Treadle, and
the runner reports the scenario as skipped with that reason instead of failing it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

LOCUSTFILES = Path(__file__).parent / "locustfiles"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    app: str  # import string of the example app
    locustfile: str  # file name in loadtests/locustfiles
    server_args: tuple[str, ...] = ()
    needs_flags: tuple[str, ...] = ()  # treadle flags the scenario relies on
    needs_modules: tuple[str, ...] = ()  # importable modules the server side relies on

    @property
    def locustfile_path(self) -> Path:
        return LOCUSTFILES / self.locustfile

    def missing(self) -> str | None:
        """Why this scenario cannot run here, or None when it can."""
        from treadle.server.cli import build_parser

        help_text = build_parser().format_help()
        flags = [flag for flag in self.needs_flags if flag not in help_text]
        if flags:
            return f"this treadle has no {', '.join(flags)} (see treadle --help)"
        modules = [name for name in self.needs_modules if importlib.util.find_spec(name) is None]
        if modules:
            return f"module(s) not installed: {', '.join(modules)}"
        return None


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("plaintext", "GET / → 13 bytes of text", "loadtests.example_apps:plaintext", "plaintext.py"),
        Scenario(
            "json_api",
            "FastAPI: GET /items/{id} and POST /items with validation",
            "loadtests.example_apps:json_api",
            "json_api.py",
            needs_modules=("fastapi",),
        ),
        Scenario(
            "files",
            "256 KiB uploads hashed by the app, 1 MiB chunked downloads",
            "loadtests.example_apps:files",
            "files.py",
        ),
        Scenario(
            "mixed",
            "slow WSGI endpoint on the thread pool (/sync) beside a slow async one (/slow)",
            "loadtests.example_apps:slow_async",
            "mixed.py",
            server_args=("--mount", "/sync=loadtests.example_apps:slow_wsgi"),
            needs_flags=("--mount",),
        ),
        Scenario(
            "websocket",
            "WebSocket echo of 1 KiB messages, one connection per user",
            "loadtests.example_apps:ws_echo",
            "websocket.py",
            server_args=("--ws", "wsproto"),
            needs_flags=("--ws",),
            needs_modules=("wsproto", "websockets"),
        ),
    )
}
