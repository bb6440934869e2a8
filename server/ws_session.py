"""A WebSocket session on any transport: frames (wsproto), messages and their limits, keepalive,
the closing handshake, flow control and the send deadline — everything but the handshake.

The handshake is the one part that differs by protocol. Over HTTP/1.1 (server/http1/websocket.py)
it is an ``Upgrade: websocket`` request answered 101, and the session then owns the TCP
connection. Over HTTP/2 (RFC 8441, server/http2/websocket.py) it is an extended CONNECT answered
200 on one stream, and the session's "transport" is that stream's DATA frames. A subclass does
the handshake (``start``, ``accept``'s answer, ``deny``, ``send_denial_body``, ``refuse``) and
calls ``_opened`` once the app has accepted; from there on this class does the rest, the same
on both, against a transport with asyncio's interface.

Flow control: ``send()`` waits while the transport's buffer is above its high-water mark.
Reading pauses while the app leaves more than 16 messages or 1 MiB unreceived, and while
frames sent before the handshake pile up.

Timers (one per session, as only one applies at a time): the next keepalive ping; the pong
deadline after it; the closing-handshake deadline after we sent a close frame; the send
deadline while writing is paused (server/http1/timers.py), in place of keepalive: a peer
that takes nothing for ``--timeout-send`` is dropped, pings or not. Keepalive is suspended
while reading is paused for the app — a pong could not be read.
"""

from __future__ import annotations

import asyncio
import os
from enum import IntEnum
from typing import Any, Awaitable

from wsproto.connection import ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from treadle.server.asgi.websocket import WebSocketCycle
from treadle.server.config import Config
from treadle.server.http1.timers import ConnectionControl
from treadle.server.observe import request_id
from treadle.server.observe.access import log_websocket
from treadle.server.observe.logging import error_logger
from treadle.server.state import ServerState
from treadle.server.waiters import wake

MAX_QUEUED_MESSAGES = 16  # unreceived by the app before we stop reading (websockets' max_queue)
MAX_QUEUED_BYTES = 1024 * 1024
INFLATE_SLICE = 4 * 1024  # compressed input handed to wsproto at once (see _take_turn)
TURN = 256  # events handled per pass of the loop; the rest waits its turn (see _take_turn)
MAX_EARLY_BYTES = 64 * 1024  # frames a client sends before the app accepts are held until then
CLOSE_TIMEOUT = 5.0  # for the peer to answer our close frame before we drop the connection

# RFC 6455 7.4.1 close codes the server itself decides on.
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_ABNORMAL = 1006  # reported to the app, never sent: the connection dropped without a close frame


class Deadline(IntEnum):
    """Which deadline the session's one timer is armed for (server/http1/timers.py)."""

    NONE = 0
    PING_DUE = 1  # time to send a keepalive ping
    PONG_DUE = 2  # the peer must have answered the ping by now
    CLOSE_DUE = 3  # the peer must have answered our close frame by now
    SEND_DUE = 4  # the peer must take some of what waits for it (--timeout-send)


_NO_DEADLINE, _PING_DUE, _PONG_DUE, _CLOSE_DUE, _SEND_DUE = Deadline
_OPEN = ConnectionState.OPEN


class WebSocketSession(ConnectionControl):
    """One WebSocket, after its handshake began; runs in the reactor thread. ``conn`` is
    wsproto's: a ``WSConnection`` (which also speaks the HTTP/1.1 handshake) or a frames-only
    ``Connection`` (HTTP/2)."""

    SEND_DEADLINE = _SEND_DUE
    # The handshake as the access log shows it: over HTTP/1.1 a GET answered 101.
    HANDSHAKE_METHOD = b"GET"
    HTTP_VERSION = "1.1"
    ACCEPTED_STATUS = 101

    def __init__(
        self,
        config: Config,
        state: ServerState,
        app: Any,
        loop: asyncio.AbstractEventLoop,
        transport: Any,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        conn: Any,
    ) -> None:
        self.config = config
        self.state = state
        self.app = app  # the server's runner, itself an ASGI app for websocket scopes (server/apps/mount.py)
        self.loop = loop
        self.transport = transport
        self.client = client
        self.server = server
        self.conn = conn
        self.cycle: WebSocketCycle | None = None
        self._target = b""  # for the access log
        self._accepted = False
        self._closed = False
        self._failed = False  # the peer's input is dropped unread (see _fail)
        self._waiting = bytearray()  # input read and not yet given to wsproto (see _take_turn)
        self._turn_due = False  # a turn is scheduled: input waits for it
        self._early = b""  # bytes received before the app accepted
        self._partial = bytearray()  # the fragments so far of the message being received
        self._message_size = 0
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = _NO_DEADLINE
        self._ping_payload = b""

    def _run(self, scope: dict[str, Any], early: bytes) -> None:
        """The handshake is valid: run the app's ``WebSocketCycle``. ``early``: bytes that came
        with the handshake, held until the app accepts."""
        state = self.state
        self._early = early
        cycle = WebSocketCycle(scope, self, self.loop)
        self.cycle = cycle
        state.active_requests += 1
        state.count_request()
        task = self.loop.create_task(cycle.run(self.app))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)

    # -- the transport's callbacks (reactor thread) ----------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.state.stats.bytes_in += len(data)
        self.feed(data)

    def feed(self, data: bytes) -> None:
        """What the peer sent (over HTTP/2: a stream's DATA, already counted by its connection)."""
        if self._closed:
            return
        if not self._accepted:
            self._early += data
            if len(self._early) > MAX_EARLY_BYTES:
                self._pause_reading()
            return
        if self._failed:
            return
        if self._turn_due:
            self._waiting += data  # after what already waits its turn
            self.transport.pause_reading()  # reading resumed meanwhile (the app took messages)
            return
        self._take_turn(data)

    def _take_turn(self, data: bytes = b"") -> None:
        """Handle input, ``TURN`` events at most; what is left waits for the next pass.

        Two bounds. wsproto inflates whatever it is given at once, and deflate expands up
        to ~1000x: compressed input goes to it in ``INFLATE_SLICE`` slices, so a bomb
        inflates a few MB at most before the size check, and nothing after it (the rest
        is dropped with the connection). And one busy peer — a flood of pings or of
        one-byte fragments, thousands of frames in one read — must not keep every other
        connection waiting while its read is parsed: past ``TURN`` events, reading pauses
        and the rest is handled on the next pass of the loop. (The transport is paused,
        not ``_pause_reading()``: that one is the app's, and suspends keepalive.)
        """
        self._turn_due = False
        waiting = self._waiting
        if len(data) > INFLATE_SLICE and self.config.ws_per_message_deflate:
            waiting += data
        elif data and not self._receive(data):  # the usual case: the whole read at once
            return
        budget = TURN
        while True:
            budget = self._handle_events(budget)
            if not budget or not waiting or self._closed or self._failed:
                break
            share = bytes(waiting[:INFLATE_SLICE])
            del waiting[:INFLATE_SLICE]
            if not self._receive(share):
                return
        if self._closed:
            return
        if self._failed:
            waiting.clear()
        elif waiting or not budget:  # more to do (or maybe: the last turn ended at its budget)
            self.transport.pause_reading()
            self._turn_due = True
            self.loop.call_soon(self._take_turn)
            return
        if not self._read_paused:
            self.transport.resume_reading()  # a failed session still reads, to drop

    def _receive(self, data: bytes) -> bool:
        try:
            self.conn.receive_data(data)
        except LocalProtocolError:
            self._close()  # bytes after the closing handshake completed
            return False
        return True

    def eof_received(self) -> bool | None:
        return None  # the peer half-closed without a close frame: the connection is over

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._drop_timer()
        state = self.state
        state.connections.discard(self)
        if self.cycle is not None:
            self.cycle.disconnect(CLOSE_ABNORMAL)
            # As for HTTP (http1/connection.py): no reference cycle keeps this protocol and
            # its buffers (a message's fragments, up to --ws-max-size) for the collector.
            self.cycle = None
        self._wake_drain_waiter()

    def pause_writing(self) -> None:
        self._write_paused = True
        if not self._closed and self._timer_kind != _CLOSE_DUE:  # that one is sooner
            self._arm_send_deadline()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._timer_kind == _SEND_DUE and not self._closed:
            self._keep_alive()  # the peer caught up: back to keepalive
        self._wake_drain_waiter()

    # -- frames from the peer ------------------------------------------------------------------

    def _handle_events(self, budget: int) -> int:
        """Handle up to ``budget`` events; returns what is left of it (0: there may be more)."""
        ping = None
        for event in self.conn.events():  # parses (and inflates) frame by frame, lazily
            if self._failed:
                return budget
            budget -= 1
            kind = type(event)
            if kind is TextMessage or kind is BytesMessage:
                self._on_message(event)
            elif kind is Ping:
                # RFC 6455 5.5.3: "If an endpoint receives a Ping frame and has not yet sent
                # Pong frame(s) in response to previous Ping frame(s), the endpoint MAY elect
                # to send a Pong frame for only the most recently processed Ping frame." So a
                # flood of pings read at once costs one pong, not one each.
                ping = event
            elif kind is Pong:
                if self._timer_kind == _PONG_DUE and event.payload == self._ping_payload:
                    self._set_timer(_PING_DUE, self.config.ws_ping_interval)
            elif kind is CloseConnection:
                self._on_close(event)
            if not budget:
                break  # the rest stays parsed-but-unread in wsproto until the next turn
        # A peer that does not read gets no pongs: they would only pile up here.
        if ping is not None and self.conn.state is _OPEN and not self._write_paused:
            self._write(self.conn.send(ping.response()))
        return budget

    def _on_message(self, event: TextMessage | BytesMessage) -> None:
        if self.conn.state is not _OPEN:
            return  # closing: the app gets no more messages
        data = event.data
        text = type(data) is str
        # The limit is in bytes. isascii() is O(1) in CPython: only other text is encoded to count.
        encoded = data.encode("utf-8") if text and not data.isascii() else None
        self._message_size += len(data) if encoded is None else len(encoded)
        limit = self.config.ws_max_size
        if self._message_size > limit:
            self._fail(CLOSE_MESSAGE_TOO_BIG, f"message larger than {limit} bytes")
            return
        partial = self._partial
        if partial or not event.message_finished:
            # A fragment joins the message so far as bytes (text as UTF-8: wsproto decodes
            # fragments whole characters at a time), in one buffer: a message sent in a
            # hundred thousand one-byte fragments costs its size, not as many objects.
            partial += data if not text else encoded if encoded is not None else data.encode("ascii")
            if not event.message_finished:
                return
            data = partial.decode("utf-8") if text else bytes(partial)
            self._partial = bytearray()
        elif type(data) is bytearray:
            data = bytes(data)
        self._message_size = 0
        cycle = self.cycle
        assert cycle is not None
        cycle.feed(data)
        if len(cycle.queue) >= MAX_QUEUED_MESSAGES or cycle.queued_bytes >= MAX_QUEUED_BYTES:
            self._pause_reading()

    def _on_close(self, event: CloseConnection) -> None:
        conn_state = self.conn.state
        if conn_state is ConnectionState.REMOTE_CLOSING:
            self._write(self.conn.send(event.response()))  # the peer closes: answer in kind
        elif conn_state is _OPEN:
            # wsproto reports a frame it cannot parse as a close event with the code to use
            # (1002 protocol error, 1007 invalid UTF-8) without sending it: send it ourselves.
            error_logger.debug("WebSocket protocol error from %s: %s", self.client, event.reason)
            self._write(self.conn.send(event))
        # else CLOSED: the peer answered our close frame.
        assert self.cycle is not None
        self.cycle.disconnect(int(event.code), event.reason or "")
        self._close()  # RFC 6455 7.1.1: the server closes the TCP connection first

    # -- the WebSocketChannel interface, called by WebSocketCycle (reactor thread) ------------

    def accept(self, cycle: WebSocketCycle, subprotocol: str | None, headers: list[Any]) -> None:
        self._send_acceptance(subprotocol, self._with_default_headers(headers))
        self._accepted = True
        self._log_access(self.ACCEPTED_STATUS)
        if self._timer_kind != _SEND_DUE:
            self._keep_alive()
        early, self._early = self._early, b""
        self._resume_reading()
        if early:
            self.feed(early)
        if self.state.closing:
            self._server_close(CLOSE_SERVICE_RESTART, "server shutting down")  # accepted during shutdown

    def _send_acceptance(self, subprotocol: str | None, headers: list[Any]) -> None:
        """Answer the handshake: the app accepted, with this subprotocol and these headers."""
        raise NotImplementedError

    def send_message(self, cycle: WebSocketCycle, data: str | bytes) -> Awaitable[None] | None:
        if self._closed or self.conn.state is not _OPEN or self.transport.is_closing():
            cycle.disconnect(CLOSE_ABNORMAL)  # a dead or closing connection; the cycle raises
            return None
        message = TextMessage(data=data) if type(data) is str else BytesMessage(data=data)
        self._write(self.conn.send(message))
        return self._drain()

    def close(self, cycle: WebSocketCycle, code: int, reason: str) -> None:
        self._start_close(code, reason)

    def abort(self, cycle: WebSocketCycle) -> None:
        self.force_close()

    def message_taken(self, cycle: WebSocketCycle) -> None:
        if (
            self._read_paused
            and len(cycle.queue) < MAX_QUEUED_MESSAGES // 2
            and cycle.queued_bytes < MAX_QUEUED_BYTES // 2
        ):
            self._resume_reading()

    def cycle_done(self, cycle: WebSocketCycle) -> None:
        self.state.active_requests -= 1

    # -- closing -------------------------------------------------------------------------------

    def _start_close(self, code: int, reason: str) -> None:
        """Send a close frame and give the peer CLOSE_TIMEOUT to answer it."""
        if self._closed or self.conn.state is not _OPEN:
            return
        self._write(self.conn.send(CloseConnection(code=code, reason=reason)))
        self._set_timer(_CLOSE_DUE, CLOSE_TIMEOUT)

    def _server_close(self, code: int, reason: str) -> None:
        """A close the server decides on: the app learns of it at once."""
        self._start_close(code, reason)
        if self.cycle is not None:
            self.cycle.disconnect(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        """Fail the WebSocket connection (RFC 6455 7.1.7) over input we will not process.

        "An endpoint MUST NOT continue to attempt to process data (including a responding
        Close frame) from the remote endpoint after being instructed to _Fail the WebSocket
        Connection_." And "SHOULD send a Close frame with an appropriate status code ...
        before proceeding to _Close the WebSocket Connection_." So: the close frame, then
        our FIN, and the peer's input is read and dropped — never parsed, never inflated —
        until it closes or CLOSE_TIMEOUT runs out. Dropping rather than no longer reading
        lets the peer read our close frame before TCP tears down: closing with unread input
        makes the kernel reset the connection, which can destroy what we sent.
        """
        self._server_close(code, reason)
        self._failed = True
        self._partial = bytearray()  # the part of the message we held
        transport = self.transport
        if transport.can_write_eof():
            transport.write_eof()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close_transport()

    def shutdown(self) -> None:
        """Graceful shutdown: close an open session with 1012 (one still in its handshake is
        closed right after the app accepts it)."""
        if self._accepted:
            self._server_close(CLOSE_SERVICE_RESTART, "server shutting down")

    def force_close(self) -> None:
        self._closed = True
        self._drop_timer()
        self.transport.abort()

    # -- helpers -------------------------------------------------------------------------------

    def _with_default_headers(self, headers: list[Any]) -> list[Any]:
        """The app's headers plus Server, Date and ``--header`` lines it did not set itself."""
        names = {name.lower() for name, _ in headers if isinstance(name, bytes)}
        block = self.state.default_headers(b"date" in names, b"server" in names)
        extra = [tuple(line.split(b": ", 1)) for line in block.split(b"\r\n") if line]
        scope = self.cycle.scope if self.cycle is not None else None
        return list(headers) + extra + request_id.echo(self.config, scope, headers)

    def _log_access(self, status: int) -> None:
        cycle = self.cycle
        scope = cycle.scope if cycle is not None else None
        client = scope["client"] if scope is not None else self.client  # as a trusted proxy said
        log_websocket(self.config, client, self._target, status, scope, self.HANDSHAKE_METHOD, self.HTTP_VERSION)

    def _drain(self) -> Awaitable[None] | None:
        if not self._write_paused or self._closed:
            return None
        if self._drain_waiter is None:
            self._drain_waiter = self.loop.create_future()
        return self._drain_waiter

    def _keep_alive(self) -> None:
        """Arm the next keepalive ping (none with ``ws_ping_interval`` 0)."""
        interval = self.config.ws_ping_interval
        if interval:
            self._set_timer(_PING_DUE, interval)
        else:
            self._cancel_timer()

    def _wake_drain_waiter(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        wake(waiter)

    def _timer_fired(self, kind: int) -> None:
        config = self.config
        if kind == _SEND_DUE:
            if self._took_nothing():
                timeout = config.timeout_send
                error_logger.debug("WebSocket peer %s took nothing for %s s: dropping it.", self.client, timeout)
                self.force_close()
            return
        if self._closed:
            return
        if kind == _CLOSE_DUE:
            self.force_close()  # the peer never answered our close frame
        elif self._read_paused:
            # The app is not receiving, so we are not reading: a pong could not arrive.
            self._set_timer(kind, config.ws_ping_interval if kind == _PING_DUE else config.ws_ping_timeout)
        elif kind == _PING_DUE:
            self._ping_payload = os.urandom(4)  # tells the answer to this ping from stale ones
            self._write(self.conn.send(Ping(payload=self._ping_payload)))
            if self._timer_kind == _SEND_DUE:
                return  # the ping filled the buffer: the send deadline holds the timer now
            if config.ws_ping_timeout:
                self._set_timer(_PONG_DUE, config.ws_ping_timeout)
            else:
                self._set_timer(_PING_DUE, config.ws_ping_interval)
        elif kind == _PONG_DUE:
            error_logger.info("WebSocket peer %s did not answer a ping in time; dropping it.", self.client)
            self._start_close(CLOSE_INTERNAL_ERROR, "keepalive ping timeout")
            self.force_close()
