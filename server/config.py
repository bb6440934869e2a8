"""Every tunable of the server, with its default, in one place (waitress's lesson).

A ``Config`` is plain data plus ``load()``, which resolves the application. The CLI builds
one from flags, ``server.run(app, **options)`` from keywords; nothing else reads options.
"""

from __future__ import annotations

from typing import Any, Sequence

from server.importer import load_app
from server.ws_select import WS_MODES

LIFESPAN_MODES = ("auto", "on", "off")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class Config:
    """Server options. Times are seconds; sizes are bytes; ``None`` disables a limit."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        log_level: str | int | None = "info",
        log_config: str | dict | None = None,
        access_log: bool = True,
        root_path: str = "",
        app_dir: str | None = ".",
        factory: bool = False,
        lifespan: str = "auto",
        headers: Sequence[tuple[str, str]] = (),
        server_header: bool = True,
        date_header: bool = True,
        selector: str | None = None,
        backlog: int = 2048,
        # Observability (server/observe.py), all off by default. The stats endpoint has its own
        # port so it never mixes with the app's routes; trace_reactor is a file, or "-" for stderr.
        stats_port: int | None = None,
        stats_host: str = "127.0.0.1",
        stats_interval: float | None = None,
        trace_reactor: str | None = None,
        # Limits. 16 KiB for the head is h11's default and what most servers accept.
        limit_request_head_size: int = 16 * 1024,
        limit_request_body_size: int | None = 100 * 1024 * 1024,
        limit_concurrency: int | None = None,
        # Timeouts. Keep-alive 5 s as uvicorn; 10 s to send a complete request head
        # defeats slowloris while allowing slow mobile links; 30 s graceful as gunicorn.
        timeout_keep_alive: float = 5.0,
        timeout_request_header: float = 10.0,
        timeout_graceful_shutdown: float = 30.0,
        # WebSockets: 16 MiB messages, a ping every 20 s answered within 20 s (uvicorn's defaults).
        ws: str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
    ) -> None:
        if lifespan not in LIFESPAN_MODES:
            raise ValueError(f"lifespan must be one of {LIFESPAN_MODES}, not {lifespan!r}")
        if ws not in WS_MODES:
            raise ValueError(f"ws must be one of {WS_MODES}, not {ws!r}")
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.log_config = log_config
        self.access_log = access_log
        self.root_path = root_path
        self.app_dir = app_dir
        self.factory = factory
        self.lifespan = lifespan
        self.headers = [(str(n), str(v)) for n, v in headers]
        self.server_header = server_header
        self.date_header = date_header
        self.selector = selector
        self.backlog = backlog
        self.stats_port = stats_port
        self.stats_host = stats_host
        self.stats_interval = stats_interval or None
        self.trace_reactor = trace_reactor or None
        self.limit_request_head_size = limit_request_head_size
        self.limit_request_body_size = limit_request_body_size or None
        self.limit_concurrency = limit_concurrency or None
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_request_header = timeout_request_header
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.ws = ws
        self.ws_max_size = ws_max_size
        self.ws_ping_interval = ws_ping_interval or None
        self.ws_ping_timeout = ws_ping_timeout or None
        self.ws_per_message_deflate = ws_per_message_deflate
        self.loaded_app: Any = None

    def load(self) -> Any:
        """Resolve the application (import string, ``--factory``, ``--app-dir``) once."""
        if self.loaded_app is None:
            self.loaded_app = load_app(self.app, self.app_dir, self.factory)
        return self.loaded_app

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """The ``--header`` pairs as the lowercase-name byte pairs they are sent as."""
        return [(n.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for n, v in self.headers]
