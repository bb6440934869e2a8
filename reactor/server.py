"""A listening server: the object create_server() returns (asyncio.AbstractServer).

It owns the listening sockets and the set of transports it accepted, so it can stop
accepting (close), wait for every connection to end (wait_closed), or end them itself
(close_clients, abort_clients). Accepting is done by the reactor's `_accept_ready`.
"""

from __future__ import annotations

import asyncio
import os
import weakref


class Server(asyncio.AbstractServer):
    def __init__(self, loop, sockets, protocol_factory, ssl_context, backlog, ssl_handshake_timeout,
                 ssl_shutdown_timeout, unix_file=None) -> None:
        self._loop = loop
        self._sockets = sockets
        self._protocol_factory = protocol_factory
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        # (path, st_dev, st_ino) of a Unix listener's socket file, removed on close() if unchanged.
        self._unix_file = unix_file
        self._clients: weakref.WeakSet = weakref.WeakSet()
        self._serving = False
        self._serving_forever: asyncio.Future | None = None
        self._closed_waiters: list[asyncio.Future] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # ------------------------------------------------------------------ runs in the reactor

    def _attach(self, transport) -> None:
        self._clients.add(transport)

    def _detach(self, transport) -> None:
        self._clients.discard(transport)
        if not self._clients and self._sockets is None:
            self._wake_closed_waiters()

    def _start_serving(self) -> None:
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop._add_reader(sock.fileno(), self._loop._accept_ready, self, sock, self._backlog)

    def _pause_listener(self, sock, delay: float) -> None:
        """Stop accepting on `sock` for `delay` seconds (the process ran out of descriptors)."""
        self._loop._remove_reader(sock.fileno())
        self._loop.call_later(delay, self._resume_listener, sock)

    def _resume_listener(self, sock) -> None:
        if self._serving and self._sockets is not None and sock in self._sockets:
            self._loop._add_reader(sock.fileno(), self._loop._accept_ready, self, sock, self._backlog)

    def _wake_closed_waiters(self) -> None:
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ asyncio.AbstractServer

    @property
    def sockets(self) -> tuple:
        if self._sockets is None:
            return ()
        return tuple(asyncio.trsock.TransportSocket(sock) for sock in self._sockets)

    def get_loop(self):
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    def close(self) -> None:
        """Stop accepting and close the listeners; accepted connections are left to finish."""
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            return
        self._serving = False
        for sock in sockets:
            self._loop._remove_reader(sock.fileno())
            sock.close()
        if self._unix_file is not None:
            path, dev, ino = self._unix_file
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):  # not a socket someone bound there since
                    os.unlink(path)
            except OSError:
                pass
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
            self._serving_forever = None
        if not self._clients:
            self._wake_closed_waiters()

    def close_clients(self) -> None:
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        for transport in list(self._clients):
            transport.abort()

    async def start_serving(self) -> None:
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        await asyncio.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and every connection it accepted has ended."""
        if self._sockets is None and not self._clients:
            return
        waiter = self._loop.create_future()
        self._closed_waiters.append(waiter)
        await waiter
