"""State shared by all connections of one server: live connections, running request tasks,
the lifespan state, and the pre-rendered default response headers.

Discussion: the ``Date`` header changes once a second, so it is rendered at most once a
second (``email.utils.formatdate`` is slow) and cached together with ``Server`` and the
``--header`` lines as one ready-to-send byte string per combination the app can ask for.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

from treadle.server.config import Config
from treadle.server.observe.stats import ServerStats


class ServerState:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.connections: set[Any] = set()  # live protocol objects
        self.tasks: set[asyncio.Task] = set()  # running ASGI request tasks
        self.active_requests = 0  # for --limit-concurrency
        self.lifespan_state: dict[str, Any] = {}
        self.closing = False
        self.on_request_limit: Any = None  # called when total_requests reaches --limit-max-requests
        self.total_requests = 0
        self.stats = ServerStats()  # counters fed by the connections, read by --stats-port
        # What takes an HTTP/1.1 request asking to Upgrade over, by protocol token: b"websocket"
        # (server/ws_select.py), b"h2c" (server/http2/upgrade.py). Set by the server; an
        # upgrade to anything else is served as a plain request.
        self.upgrades: dict[bytes, Any] = {}
        # What takes an HTTP/2 extended CONNECT for a WebSocket over (server/http2/websocket.py);
        # None with WebSockets off.
        self.websocket_connect: Any = None
        self.server_cert: str | None = None  # PEM, for the ASGI TLS extension (server/tls.py)
        self._server_line = b"server: treadle\r\n" if config.server_header else b""
        self._extra_lines = b"".join(n + b": " + v + b"\r\n" for n, v in config.encoded_headers())
        self._date_second = -1
        # index: (app_sets_date << 1) | app_sets_server
        self._blocks = [b"", b"", b"", b""]
        self._pairs: list[list[tuple[bytes, bytes]]] = [[], [], [], []]

    def count_request(self) -> None:
        """Count a request; the one that reaches ``--limit-max-requests`` calls ``on_request_limit``."""
        self.total_requests += 1
        if self.total_requests == self.config.limit_max_requests and self.on_request_limit is not None:
            self.on_request_limit()

    def default_headers(self, app_has_date: bool, app_has_server: bool) -> bytes:
        """The server-added header lines, omitting those the app already set itself."""
        now = time.time()
        second = int(now)
        if second != self._date_second:
            self._render(now, second)
        return self._blocks[(app_has_date << 1) | app_has_server]

    def default_header_pairs(self, app_has_date: bool, app_has_server: bool) -> list[tuple[bytes, bytes]]:
        """The same fields as ``(name, value)`` pairs, for protocols that do not send lines (HTTP/2)."""
        now = time.time()
        second = int(now)
        if second != self._date_second:
            self._render(now, second)
        return self._pairs[(app_has_date << 1) | app_has_server]

    def _render(self, now: float, second: int) -> None:
        self._date_second = second
        date = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        if not self.config.date_header:
            date = b""
        server, extra = self._server_line, self._extra_lines
        self._blocks = [server + date + extra, date + extra, server + extra, extra]
        self._pairs = [
            [tuple(line.split(b": ", 1)) for line in block.split(b"\r\n") if line]  # type: ignore[misc]
            for block in self._blocks
        ]
