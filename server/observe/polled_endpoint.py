"""The stats port served from someone else's ``select()`` loop, without a thread: the
supervisor's (``--workers`` with ``--stats-port``).

Why not the thread the single server uses (server/observe/endpoint.py): a supervisor forks
workers whenever one dies or a reload begins, and a fork copies only the forking thread —
a lock another thread held at that instant stays held forever in the child. So the
supervisor has no threads, and its endpoint is a few sockets in the ``select()`` it already
sleeps in: ``readers()`` and ``writers()`` say which, ``serve()`` acts on what was ready.

Each client sends one request head and gets one response, then the connection closes (HTTP
/1.0 style: no keep-alive, nothing to pipeline). Defences, since this runs in the process
that keeps the workers alive:

- a head larger than ``MAX_HEAD`` is answered 431 and closed: memory per client is bounded;
- every client has ``CLIENT_TIMEOUT`` from its accept to its last byte written, then is
  dropped, however slowly it sends or reads: a slow client cannot hold a socket long;
- at most ``MAX_CLIENTS`` at once; past that, new ones wait in the listen backlog;
- only ``GET`` and ``HEAD`` are served (405 otherwise), and nothing here can raise into the
  supervisor's loop: an unexpected error drops that client and is logged.
"""

from __future__ import annotations

import socket
import time
from http import HTTPStatus
from typing import Any, Callable

from treadle.server.observe.logging import error_logger
from treadle.server.observe.routes import Reply, respond

MAX_HEAD = 8 * 1024  # bytes of request line and headers; browsers and curl send well under 1 KiB
CLIENT_TIMEOUT = 2.0  # seconds from accept to the last byte written (as the threaded endpoint)
MAX_CLIENTS = 32


class _Client:
    __slots__ = ("sock", "head", "out", "deadline")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.head = bytearray()
        self.out: memoryview | None = None  # the response, once there is one
        self.deadline = deadline


class PolledEndpoint:
    def __init__(self, host: str, port: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Bind now (OSError if the address is taken), to be served by ``serve()``."""
        self.snapshot = snapshot
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self._listener = socket.socket(family, kind, proto)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(address)
            self._listener.listen(64)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self._clients: dict[socket.socket, _Client] = {}

    @property
    def address(self) -> tuple[str, int]:
        return self._listener.getsockname()[:2]

    def fileno(self) -> int:
        """The listening socket's (a worker closes it after the fork)."""
        return self._listener.fileno()

    def readers(self) -> list[socket.socket]:
        waiting = [client.sock for client in self._clients.values() if client.out is None]
        return waiting + [self._listener] if len(self._clients) < MAX_CLIENTS else waiting

    def writers(self) -> list[socket.socket]:
        return [client.sock for client in self._clients.values() if client.out is not None]

    def next_deadline(self) -> float | None:
        return min((client.deadline for client in self._clients.values()), default=None)

    def serve(self, readable: list[Any], writable: list[Any]) -> None:
        """Act on the sockets ``select()`` found ready, then drop the clients out of time."""
        for sock in readable:
            if sock is self._listener:
                self._accept()
            elif sock in self._clients:
                self._guarded(self._read, self._clients[sock])
        for sock in writable:
            if sock in self._clients:
                self._guarded(self._write, self._clients[sock])
        now = time.monotonic()
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self._drop(client)

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client)
        self._listener.close()

    # -- one client ----------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:  # EMFILE and the like: the supervisor must go on
            error_logger.warning("stats endpoint: cannot accept: %s", exc)
            return
        sock.setblocking(False)
        self._clients[sock] = _Client(sock, time.monotonic() + CLIENT_TIMEOUT)

    def _guarded(self, act: Callable[[_Client], None], client: _Client) -> None:
        try:
            act(client)
        except OSError:
            self._drop(client)  # reset by the peer, and so on: nothing to tell anyone
        except Exception:
            error_logger.exception("stats endpoint: error serving a client")
            self._drop(client)

    def _read(self, client: _Client) -> None:
        data = client.sock.recv(4096)
        if not data:
            self._drop(client)  # gone before finishing its request
            return
        client.head += data
        end = client.head.find(b"\r\n\r\n")
        if end < 0:
            if len(client.head) > MAX_HEAD:
                self._answer(client, Reply(431, "text/plain; charset=utf-8", b"request head too large\n"), False)
            return
        if end > MAX_HEAD:
            self._answer(client, Reply(431, "text/plain; charset=utf-8", b"request head too large\n"), False)
            return
        line = bytes(client.head[: client.head.find(b"\r\n")])
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[1].startswith(b"/"):
            self._answer(client, Reply(400, "text/plain; charset=utf-8", b"bad request\n"), False)
        elif parts[0] not in (b"GET", b"HEAD"):
            reply = Reply(405, "text/plain; charset=utf-8", b"GET only\n", (("Allow", "GET, HEAD"),))
            self._answer(client, reply, False)
        else:
            self._answer(client, respond(parts[1].decode("latin-1"), self.snapshot), parts[0] == b"HEAD")

    def _answer(self, client: _Client, reply: Reply, head_only: bool) -> None:
        lines = [f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}", "Server: treadle-stats",
                 f"Content-Type: {reply.content_type}", f"Content-Length: {len(reply.body)}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        client.out = memoryview(head if head_only else head + reply.body)
        self._write(client)

    def _write(self, client: _Client) -> None:
        assert client.out is not None
        try:
            sent = client.sock.send(client.out)
        except BlockingIOError:
            return
        client.out = client.out[sent:]
        if not client.out:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.sock, None)
        client.sock.close()
