"""The stats endpoint: ``GET /`` (the live dashboard), ``GET /stats`` (JSON) and ``GET /metrics``
(Prometheus) on its own port; what each answers is server/observe/routes.py's.

It runs in its own threads with the standard library's HTTP server, not on the reactor, for
two reasons: it never mixes with the app's routes or shows up in its counters, and it still
answers when the loop is stuck — which is exactly when one wants to look.

No client can hold it: each is served on a thread of its own (up to ``MAX_CLIENTS`` at
once; past that, 503 at once), and its whole request must arrive within one deadline
(``_Handler.timeout``), not within a timeout per read that a client sending a byte at a
time would restart for ever. The threads are daemons that shutdown does not wait for.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from treadle.server.observe import routes
from treadle.server.observe.logging import error_logger


class StatsEndpoint:
    """Serves ``snapshot()`` on ``host:port`` (port 0: any free port) from a daemon thread."""

    def __init__(self, host: str, port: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        handler = type("StatsHandler", (_Handler,), {"snapshot": staticmethod(snapshot)})
        self._httpd = _Server((host, port), handler)  # binds now: a taken port fails at startup
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


MAX_CLIENTS = 32  # served at once; more are answered 503 (the endpoint is for a scraper or two)
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Server(ThreadingHTTPServer):
    """A thread per client, daemons (so ``shutdown()`` waits for none), at most MAX_CLIENTS."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog (socketserver's 5 would leave a burst of clients unaccepted)

    def __init__(self, address: tuple[str, int], handler: type) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)  # starts the client's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error_logger.debug("stats endpoint: error serving %s", client_address, exc_info=True)


class _DeadlineReader(io.RawIOBase):
    """A socket's input whose reads all end by one deadline, however the bytes trickle in."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the request took longer than its deadline")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    snapshot: Callable[[], dict[str, Any]]
    server_version = "treadle-stats"
    # A client has this long to send its whole request (HTTP/1.0: one per connection).
    timeout = 2.0

    def setup(self) -> None:
        super().setup()
        # The file setup() made holds a reference on the socket, and close() leaves a socket
        # with references open: closed now, not when collected (PyPy collects late).
        self.rfile.close()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.timeout))

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
