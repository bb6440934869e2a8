"""The attackers' tools: many connections at once on asyncio, raw bytes, a WebSocket peer.

Everything an attack sends is written here by hand (or framed by wsproto, which the server
itself uses): the point is to send what well-behaved clients never would.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Iterable, TypeVar

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request
from wsproto.extensions import PerMessageDeflate

T = TypeVar("T")
OPEN_AT_ONCE = 200  # connections opened concurrently: well within the listen backlog


@dataclass
class Peer:
    """One attacking connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened: float = field(default_factory=time.monotonic)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def until_closed(self, timeout: float, limit: int = 1 << 20) -> tuple[bytes, float | None]:
        """What the server sent until it closed (at most ``limit`` bytes kept), and when it
        closed, in seconds since ``opened``; None if it had not closed within ``timeout``."""
        got = b""
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return got, None
                chunk = await asyncio.wait_for(self.reader.read(65536), remaining)
                if not chunk:
                    break
                if len(got) < limit:
                    got += chunk
        except (ConnectionError, asyncio.TimeoutError):
            if time.monotonic() >= deadline:
                return got, None
        return got, time.monotonic() - self.opened

    def reset(self) -> None:
        """Close with RST instead of FIN (SO_LINGER on, zero seconds)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def half_close(self) -> None:
        if self.writer.can_write_eof():
            self.writer.write_eof()

    def close(self) -> None:
        self.writer.transport.abort()


async def connect(host: str, port: int, rcvbuf: int | None = None) -> Peer:
    """A connection; ``rcvbuf`` makes it a client that does not read: its receive buffer is
    shrunk first, and the stream stops taking bytes from the socket past twice that."""
    if rcvbuf is None:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return Peer(reader, writer)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=rcvbuf)
    return Peer(reader, writer)


async def connect_many(host: str, port: int, count: int, rcvbuf: int | None = None) -> list[Peer]:
    """``count`` connections, opened ``OPEN_AT_ONCE`` at a time; fails if any cannot be."""
    peers: list[Peer] = []
    for start in range(0, count, OPEN_AT_ONCE):
        batch = min(OPEN_AT_ONCE, count - start)
        peers += await asyncio.gather(*(connect(host, port, rcvbuf) for _ in range(batch)))
    return peers


async def gather_bounded(tasks: Iterable[Awaitable[T]], timeout: float) -> list[T | None]:
    """Run them all; whatever has not finished within ``timeout`` is cancelled (None)."""
    futures = [asyncio.ensure_future(task) for task in tasks]
    if futures:
        await asyncio.wait(futures, timeout=timeout)
    results: list[T | None] = []
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is None:
            results.append(future.result())
        else:
            future.cancel()
            results.append(None)
    await asyncio.gather(*futures, return_exceptions=True)
    return results


def status_of(response: bytes) -> int | None:
    """The status code a response starts with (None if it is not one)."""
    if not response.startswith(b"HTTP/1."):
        return None
    try:
        return int(response[9:12])
    except ValueError:
        return None


def request(method: str = "GET", target: str = "/", headers: Iterable[str] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: attack", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def spread(values: list[float]) -> str:
    """'a–b s' (min to max), or 'a s' when they are one value."""
    if not values:
        return "—"
    low, high = min(values), max(values)
    return f"{low:.1f} s" if high - low < 0.05 else f"{low:.1f}–{high:.1f} s"


class WebSocketPeer:
    """A WebSocket client connection on a ``Peer``, framed by wsproto."""

    def __init__(self, peer: Peer, compress: bool = False) -> None:
        self.peer = peer
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.compress = compress

    @classmethod
    async def open(cls, host: str, port: int, compress: bool = False, rcvbuf: int | None = None) -> WebSocketPeer:
        ws = cls(await connect(host, port, rcvbuf), compress)
        extensions = [PerMessageDeflate()] if compress else []
        ws.send(Request(host="attack", target="/ws", extensions=extensions))
        while True:
            for event in ws.conn.events():
                if isinstance(event, AcceptConnection):
                    return ws
                raise ConnectionError(f"handshake refused: {event!r}")
            data = await ws.peer.reader.read(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            ws.conn.receive_data(data)

    def send(self, event: Any) -> None:
        self.peer.send(self.conn.send(event))

    def frames(self, event: Any) -> bytes:
        """The bytes of an event, not sent (to build a flood once and send it many times)."""
        return self.conn.send(event)

    async def events(self, timeout: float) -> list[Any]:
        """The next events to arrive: those of the first read that makes some, or none if
        nothing comes within ``timeout`` (or the server closed). The server's pings are
        answered (its keepalive would otherwise close a session longer than its timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            try:
                data = await asyncio.wait_for(self.peer.reader.read(1 << 20), remaining)
            except (asyncio.TimeoutError, ConnectionError):
                return []
            self.conn.receive_data(data or None)
            got = list(self.conn.events())
            for event in got:
                if isinstance(event, Ping):  # the server's keepalive: answered, as any client does
                    self.send(event.response())
            if got or not data:
                return got
