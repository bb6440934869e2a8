"""One WebSocket session with an ASGI app: the ``WebSocketCycle``.

The cycle owns what the ASGI websocket spec defines — ``receive()`` and ``send()``, the
order messages may come in, their validation, and what to do when the app fails — and
nothing about frames or sockets. It talks to its connection through the small
``WebSocketChannel`` interface below (as ``RequestCycle`` does through ``Channel``).

Session states, in the only orders the spec allows::

    CONNECTING --websocket.accept--> OPEN --websocket.close--> CLOSED
        |  \\--websocket.close (before accept: HTTP 403)---------^
        \\--websocket.http.response.start--> RESPONDING --body, more_body=False--^

The peer's side is separate: messages queue up until the app receives them, and once
the connection is gone ``receive()`` returns ``websocket.disconnect`` (after anything
still queued) and ``send()`` raises ``ClientDisconnected``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from enum import IntEnum
from typing import Any, Awaitable, Protocol

from treadle.server.exchange import ClientDisconnected
from treadle.server.observe.logging import error_logger
from treadle.server.types import ASGIApp, Message, Scope
from treadle.server.waiters import wake


class SessionState(IntEnum):
    """Where the session is, in the orders the spec allows (see the module docstring)."""

    CONNECTING = 0
    RESPONDING = 1  # a denial response (websocket.http.response) is being sent
    OPEN = 2
    CLOSED = 3


CONNECTING, RESPONDING, OPEN, CLOSED = SessionState

# RFC 6455 7.4.1: 1011 is "an unexpected condition prevented the server from fulfilling the
# request"; 1000 a normal closure (an app that returns while open is done with the session).
CLOSE_NORMAL = 1000
CLOSE_INTERNAL_ERROR = 1011


class WebSocketChannel(Protocol):
    """What a websocket cycle needs from the connection carrying it. Runs in the reactor thread."""

    def accept(self, cycle: WebSocketCycle, subprotocol: str | None, headers: list[Any]) -> None:
        """Complete the handshake (101); raise RuntimeError if the app's values are invalid."""

    def send_message(self, cycle: WebSocketCycle, data: str | bytes) -> Awaitable[None] | None:
        """Send one message; return an awaitable while the peer is not keeping up."""

    def close(self, cycle: WebSocketCycle, code: int, reason: str) -> None:
        """Start the closing handshake (after accept)."""

    def deny(self, cycle: WebSocketCycle, status: int, headers: list[Any]) -> None:
        """Answer the handshake with this HTTP response head instead of 101."""

    def send_denial_body(self, cycle: WebSocketCycle, body: bytes, more_body: bool) -> Awaitable[None] | None:
        """Send a chunk of the denial response's body."""

    def refuse(self, cycle: WebSocketCycle, status: int) -> None:
        """Answer the handshake with a short plain-text error response (403, 500) and close."""

    def abort(self, cycle: WebSocketCycle) -> None:
        """Close the connection now, without finishing what was started."""

    def message_taken(self, cycle: WebSocketCycle) -> None:
        """The app received a queued message: reading may resume."""

    def cycle_done(self, cycle: WebSocketCycle) -> None:
        """The app callable has returned; whatever it left open has been closed."""


class WebSocketCycle:
    __slots__ = ("scope", "channel", "loop", "queue", "queued_bytes", "state", "disconnected", "close", "waiter")

    def __init__(self, scope: Scope, channel: WebSocketChannel, loop: asyncio.AbstractEventLoop) -> None:
        self.scope = scope
        self.channel = channel
        self.loop = loop
        self.queue: deque[Message] = deque([{"type": "websocket.connect"}])
        self.queued_bytes = 0  # payload bytes in the queue (for the connection's flow control)
        self.state = CONNECTING
        self.disconnected = False
        self.close: Message | None = None  # the websocket.disconnect message, once known
        self.waiter: asyncio.Future | None = None  # receive() parked here

    # -- fed by the connection --------------------------------------------------------------

    def feed(self, data: str | bytes) -> None:
        """Queue a complete message from the peer."""
        key = "text" if type(data) is str else "bytes"
        self.queue.append({"type": "websocket.receive", key: data})
        self.queued_bytes += len(data)
        self._wake()

    def disconnect(self, code: int, reason: str = "") -> None:
        """The session is over with this close code; the first call wins."""
        if self.close is None:
            self.close = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        wake(waiter)

    # -- the ASGI callables ------------------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Run the app for this session, then close whatever it left open."""
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._fail()  # only the server cancels sessions: shutdown ran out of time
        except BaseException as exc:
            if self.disconnected:  # as for HTTP (asgi_http.RequestCycle.run): the peer left first
                error_logger.debug("The app raised after the WebSocket peer left: %r", exc)
            else:
                error_logger.error("Exception in ASGI application", exc_info=exc)
            self._fail()
        else:
            if self.state == CONNECTING:
                error_logger.error("ASGI callable returned without accepting or closing the websocket.")
                self._fail()
            elif self.state == RESPONDING:
                error_logger.error("ASGI callable returned without completing the denial response.")
                self._fail()
            elif self.state == OPEN and not self.disconnected:
                self.channel.close(self, CLOSE_NORMAL, "")
        finally:
            self.state = CLOSED
            self.channel.cycle_done(self)

    def _fail(self) -> None:
        """The app cannot finish the session: a 500 before the handshake, 1011 after it."""
        if self.disconnected:
            return
        if self.state == CONNECTING:
            self.channel.refuse(self, 500)
        elif self.state == RESPONDING:
            self.channel.abort(self)  # the body is cut short: the client must not take it as whole
        elif self.state == OPEN:
            self.channel.close(self, CLOSE_INTERNAL_ERROR, "")

    async def receive(self) -> Message:
        while not self.queue:
            if self.disconnected:
                assert self.close is not None
                return dict(self.close)
            self.waiter = waiter = self.loop.create_future()
            await waiter
        message = self.queue.popleft()
        if message["type"] == "websocket.receive":
            self.queued_bytes -= len(message.get("text") or message.get("bytes") or "")
            self.channel.message_taken(self)
        return message

    async def send(self, message: Message) -> None:
        if not isinstance(message, Mapping) or "type" not in message:
            raise RuntimeError(f"ASGI message must be a dict with a 'type' key, got {message!r}.")
        if self.disconnected:
            raise ClientDisconnected("The WebSocket peer has gone.")
        mtype = message["type"]
        state = self.state
        waiter = None
        if state == OPEN and mtype == "websocket.send":
            waiter = self.channel.send_message(self, _payload(message))
        elif state == OPEN and mtype == "websocket.close":
            self.channel.close(self, _close_code(message), _reason(message))
            self.state = CLOSED
        elif state == CONNECTING and mtype == "websocket.accept":
            subprotocol = message.get("subprotocol")
            if subprotocol is not None and not isinstance(subprotocol, str):
                raise RuntimeError(f"'subprotocol' of 'websocket.accept' must be a str, got {subprotocol!r}.")
            self.channel.accept(self, subprotocol, list(message.get("headers") or ()))
            self.state = OPEN
        elif state == CONNECTING and mtype == "websocket.close":
            # ASGI: closing before accepting denies the handshake with 403 Forbidden.
            self.channel.refuse(self, 403)
            self.state = CLOSED
        elif state == CONNECTING and mtype == "websocket.http.response.start":
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
                raise RuntimeError(f"'status' of 'websocket.http.response.start' must be in 200..599, got {status!r}.")
            self.channel.deny(self, status, list(message.get("headers") or ()))
            self.state = RESPONDING
        elif state == RESPONDING and mtype == "websocket.http.response.body":
            body = message.get("body", b"")
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise RuntimeError(f"'body' of 'websocket.http.response.body' must be bytes: {type(body).__name__}.")
            more = bool(message.get("more_body", False))
            waiter = self.channel.send_denial_body(self, bytes(body), more)
            if not more:
                self.state = CLOSED
        else:
            raise RuntimeError(f"Unexpected ASGI message '{mtype}' in websocket state {SessionState(state).name}.")
        if waiter is not None:
            await waiter
        if self.disconnected and mtype == "websocket.send":
            raise ClientDisconnected("The WebSocket peer has gone.")


def _payload(message: Mapping[str, Any]) -> str | bytes:
    """The one of ``bytes`` / ``text`` a websocket.send carries (the spec forbids both)."""
    data, text = message.get("bytes"), message.get("text")
    if (data is None) == (text is None):
        raise RuntimeError("'websocket.send' needs exactly one of 'bytes' and 'text'.")
    if text is not None:
        if not isinstance(text, str):
            raise RuntimeError(f"'text' of 'websocket.send' must be a str, got {type(text).__name__}.")
        return text
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RuntimeError(f"'bytes' of 'websocket.send' must be bytes, got {type(data).__name__}.")
    return bytes(data)


def _reason(message: Mapping[str, Any]) -> str:
    reason = message.get("reason") or ""
    if not isinstance(reason, str):
        raise RuntimeError(f"'reason' of 'websocket.close' must be a str, got {type(reason).__name__}.")
    return reason


def _close_code(message: Mapping[str, Any]) -> int:
    code = message.get("code")
    if code is None:
        return CLOSE_NORMAL
    # RFC 6455 7.4: codes the application may send are 1000-2999 (defined ones) and 3000-4999.
    if not isinstance(code, int) or isinstance(code, bool) or not 1000 <= code <= 4999:
        raise RuntimeError(f"'code' of 'websocket.close' must be an int in 1000..4999, got {code!r}.")
    return code
