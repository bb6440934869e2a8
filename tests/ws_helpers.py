"""Helpers for the WebSocket tests: small ASGI websocket apps, and a raw peer.

The ``websockets`` library is the well-behaved client: its sync client for ``ws://``, its
asyncio client for ``wss://`` (``wss_session``, which says why). ``RawPeer`` is the badly
behaved one — a blocking socket driven by a wsproto client connection — for what a good
client never does: go silent, flood, send broken frames, or hand-craft a handshake.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import threading
from typing import Any, Awaitable, Callable, TypeVar

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Event, Message, Request

T = TypeVar("T")


def ws_url(srv: Any, path: str = "/") -> str:
    return f"ws://127.0.0.1:{srv.port}{path}"


def wss_session(url: str, context: ssl.SSLContext, talk: Callable[[Any], Awaitable[T]], timeout: float = 5.0) -> T:
    """Open ``url`` (``wss://``) with websockets' asyncio client, run ``talk(connection)`` and
    return its result; the opening handshake and the talk get ``timeout`` seconds each.

    Not the sync client: over TLS it is unreliable with any TLS 1.3 server. Its background
    thread reads while the caller's thread writes, both on one OpenSSL connection object,
    which OpenSSL does not allow; right after the handshake the server's session tickets
    arrive just as the client writes its upgrade request, and a write made while the other
    thread processes a ticket is acknowledged and never sent (shown deterministically by
    tests/test_prod_tls.py::test_a_write_while_the_client_processes_tickets_is_lost). The
    handshake then times out now and then, more often on a loaded machine. The asyncio
    client keeps its TLS in one thread.
    """
    from websockets.asyncio.client import connect

    async def session() -> T:
        async with connect(url, ssl=context, open_timeout=timeout) as connection:
            return await asyncio.wait_for(talk(connection), timeout)

    return asyncio.run(session())


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Accepts (with the first offered subprotocol) and echoes every message until disconnect."""
    assert scope["type"] == "websocket", scope
    assert (await receive())["type"] == "websocket.connect"
    subprotocols = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": subprotocols[0] if subprotocols else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")})


class Events:
    """What an app saw, for assertions from the test thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)

    def __call__(self) -> list[Any]:
        with self.lock:
            return list(self.items)


def handshake_request(path: str = "/", headers: list[tuple[str, str]] | None = None, key: str | None = None) -> bytes:
    """A hand-written upgrade request; ``headers`` replace the defaults of the same name."""
    fields = {
        "Host": "test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    for name, value in headers or []:
        fields[name] = value
    lines = [f"GET {path} HTTP/1.1"] + [f"{n}: {v}" for n, v in fields.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class RawPeer:
    """A WebSocket client on a blocking socket, with wsproto doing the framing."""

    def __init__(self, port: int, timeout: float = 5.0, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.conn = WSConnection(ConnectionType.CLIENT)

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()

    def handshake(self, path: str = "/") -> None:
        self.send(Request(host="test", target=path))
        event = self.next_event()
        assert isinstance(event, AcceptConnection), event

    def send(self, event: Event) -> None:
        self.sock.sendall(self.conn.send(event))

    def next_event(self) -> Event:
        """The next event from the server; raises ConnectionError at EOF."""
        while True:
            for event in self.conn.events():
                return event
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.conn.receive_data(data)

    def next_message(self) -> str | bytes:
        """The next whole data message (wsproto hands over frames in pieces as they arrive)."""
        parts = []
        while True:
            event = self.next_event()
            assert isinstance(event, Message), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts) if isinstance(event.data, str) else b"".join(parts)

    def closed_by_server(self) -> bool:
        """Read (and drop) until EOF or reset; False if the socket timeout passes first."""
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return True

