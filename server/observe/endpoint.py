"""The stats endpoint: ``GET /`` (the live dashboard), ``GET /stats`` (JSON) and ``GET /metrics``
(Prometheus) on its own port; what each answers is server/observe/routes.py's.

It runs in its own thread with the standard library's HTTP server, not on the reactor, for
two reasons: it never mixes with the app's routes or shows up in its counters, and it still
answers when the loop is stuck — which is exactly when one wants to look.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable

from treadle.server.observe import routes
from treadle.server.observe.logging import error_logger


class StatsEndpoint:
    """Serves ``snapshot()`` on ``host:port`` (port 0: any free port) from a daemon thread."""

    def __init__(self, host: str, port: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        handler = type("StatsHandler", (_Handler,), {"snapshot": staticmethod(snapshot)})
        self._httpd = HTTPServer((host, port), handler)  # binds now: a taken port fails at startup
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self._httpd.server_address[:2]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.5,), name="treadle-stats")
        self._thread.daemon = True
        self._thread.start()
        error_logger.info("Stats on http://%s:%d/ (dashboard), /stats and /metrics", *self.address)

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    snapshot: Callable[[], dict[str, Any]]
    server_version = "treadle-stats"
    # One request at a time: a client that connects and says nothing may hold the endpoint
    # (and the server's shutdown, which waits for it) this long, no longer.
    timeout = 2.0

    def do_GET(self) -> None:
        reply = routes.respond(self.path, self.snapshot)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        error_logger.debug("stats endpoint: " + format, *args)
