"""WebSocket over HTTP/2 (RFC 8441): an extended CONNECT on one stream, answered 200, after which
the stream's DATA frames carry the WebSocket's frames both ways until either side ends it.

The server says it takes them with SETTINGS_ENABLE_CONNECT_PROTOCOL (server/http2/engine.py);
a client then sends ``:method CONNECT``, ``:protocol websocket``, ``:scheme``, ``:path`` and
``:authority`` (RFC 8441 4), with the fields of RFC 6455's handshake except the key: no
``Sec-WebSocket-Key``, no ``Sec-WebSocket-Accept`` (RFC 8441 5), as the stream itself is proof
enough that the peer speaks the protocol. ``Sec-WebSocket-Version`` must be 13.

Everything after the handshake is the session's (server/ws_session.py), the same as over
HTTP/1.1, with the same limits. Its transport here is ``StreamTransport``, which is also the
stream's exchange as the connection sees it:

- what the session writes is queued on the stream and sent as DATA frames within the flow-control
  windows, taking turns with the other streams; writing pauses past the stream's high-water
  mark and resumes as the queue drains, as a socket's buffer would;
- what the client sends is handed over as it arrives, and credited back to the client
  (WINDOW_UPDATE) once handed: while the session pauses reading (its app is behind), nothing is
  credited, so the client's window closes, and what is still in flight is held (at most one
  window) until reading resumes;
- closing ends the stream (END_STREAM, and RST_STREAM NO_ERROR if the client's half is still
  open, RFC 9113 8.1), aborting resets it (CANCEL); the client ending or resetting the stream,
  or the connection going, is the session's ``connection_lost``.

A denial (the ``websocket.http.response`` extension) is an ordinary response on the stream.
"""

from __future__ import annotations

from typing import Any, Awaitable

from h2.errors import ErrorCodes
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import server_extensions_handshake

from treadle.server.asgi.scope import websocket_scope
from treadle.server.asgi.websocket import WebSocketCycle
from treadle.server.http2.stream import HIGH_WATER, Stream, TunnelStream
from treadle.server.observe.logging import error_logger
from treadle.server.target import InvalidPath
from treadle.server.ws_session import CLOSE_ABNORMAL, WebSocketSession

WEBSOCKET_VERSION = b"13"  # RFC 6455 4.1, the only one


def connect(connection: Any, stream: TunnelStream, fields: list[tuple[bytes, bytes]]) -> None:
    """Take an extended CONNECT with ``:protocol websocket`` (its stream just opened, its
    regular fields ``fields``, ``:authority`` already as ``host``) as a WebSocket."""
    session = H2WebSocket(connection, stream)
    session.start(fields)


class StreamTransport:
    """A stream as the session's transport, and as the exchange the connection feeds."""

    def __init__(self, connection: Any, stream: Stream) -> None:
        self.connection = connection
        self.stream = stream
        self.session: H2WebSocket | None = None
        self.scope: dict[str, Any] | None = None  # the connection's log reads the exchange's
        self._closing = False
        self._write_paused = False
        self._read_paused = False
        self._held = bytearray()  # received while reading was paused
        self._release_due = False
        self._lost = False
        self._app_done = False

    # -- what the session calls (asyncio's transport interface) --------------------------------

    def write(self, data: bytes) -> None:
        stream = self.stream
        if self._closing or stream.closed:
            return
        stream.pending.append(data)
        stream.pending_size += len(data)
        self.connection.send_ready(stream)
        if not self._write_paused and not stream.closed and stream.pending_size > HIGH_WATER:
            self._write_paused = True
            assert self.session is not None
            self.session.pause_writing()

    def get_write_buffer_size(self) -> int:
        return self.stream.pending_size

    def is_closing(self) -> bool:
        return self._closing or self.stream.closed

    def close(self) -> None:
        """END_STREAM once what is queued has gone."""
        if self._closing or self.stream.closed:
            return
        self._closing = True
        self.stream.end_after_pending = True
        self.connection.send_ready(self.stream)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        # A stream cannot be half-closed and then read to drain it, as TCP must be: the
        # connection resets the client's half (NO_ERROR) once ours has ended, and frames in
        # flight for it are dropped in order, never resetting what we sent before.
        self.close()

    def abort(self) -> None:
        if not self.stream.closed:
            self.connection.reset(self.stream, ErrorCodes.CANCEL)

    def pause_reading(self) -> None:
        self._read_paused = True

    def resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            if self._held and not self._release_due:
                self._release_due = True
                self.connection.loop.call_soon(self._release)

    # -- what the connection calls (the exchange interface) ------------------------------------

    def feed_body(self, data: bytes) -> None:
        if self._read_paused or self._release_due:
            self._held += data  # not credited: the client's window closes behind it
            return
        self._hand_over(data)

    def end_body(self) -> None:
        """The client ended its half of the stream: the WebSocket is over, as TCP's EOF. Before
        the app has answered, there is no response to end (RFC 9113 8.1): the stream is reset."""
        assert self.session is not None
        if not self.stream.status:
            self.abort()
        elif not self.session.eof_received():
            self.close()

    def disconnect(self) -> None:
        self._connection_lost()

    def drained(self) -> None:
        """The stream's queue went down (or the stream is gone): ``Stream.wake`` for a tunnel."""
        if self.stream.closed:
            self._connection_lost()
        elif self._write_paused and self.stream.pending_size <= HIGH_WATER // 2:
            self._write_paused = False
            assert self.session is not None
            self.session.resume_writing()

    def app_done(self) -> None:
        """The app has returned; the stream is the connection's to forget once it is over too."""
        self._app_done = True
        if self._lost:
            self.connection.exchange_done(self.stream)

    # -- helpers -------------------------------------------------------------------------------

    def _hand_over(self, data: bytes) -> None:
        stream = self.stream
        if stream.unacked:
            self.connection.credit(stream, stream.unacked)
            stream.unacked = 0
        assert self.session is not None
        self.session.feed(data)

    def _release(self) -> None:
        self._release_due = False
        if self._read_paused or self._lost:
            return
        held, self._held = bytes(self._held), bytearray()
        if held:
            self._hand_over(held)

    def _connection_lost(self) -> None:
        if self._lost:
            return
        self._lost = True
        self._held = bytearray()
        if self.session is not None:
            self.session.connection_lost(None)
        if self._app_done:
            self.connection.exchange_done(self.stream)


class H2WebSocket(WebSocketSession):
    """A WebSocket on one HTTP/2 stream."""

    HANDSHAKE_METHOD = b"CONNECT"
    HTTP_VERSION = "2"
    ACCEPTED_STATUS = 200  # RFC 8441 5: any 2xx; 200 as every server sends

    def __init__(self, connection: Any, stream: TunnelStream) -> None:
        transport = StreamTransport(connection, stream)
        stream.transport = transport
        super().__init__(
            connection.config,
            connection.state,
            connection.app,
            connection.loop,
            transport,
            connection.client,
            connection.server,
            Connection(ConnectionType.SERVER),  # frames only: the handshake is HEADERS
        )
        transport.session = self
        stream.logged = True  # the session logs its handshake's outcome itself
        self.stream = stream
        self.h2 = connection
        self._offers: list[str] = []  # Sec-WebSocket-Extensions offered

    def start(self, fields: list[tuple[bytes, bytes]]) -> None:
        """Check the handshake's fields and run the app, or answer an error on the stream."""
        # Not one of the server's connections (those are TCP connections, which the stats
        # count): its HTTP/2 connection reaches it at shutdown (Http2Connection.shutdown).
        stream = self.stream
        self._target = stream.target
        version = subprotocols = None
        for name, value in fields:
            if name == b"sec-websocket-version":
                version = value
            elif name == b"sec-websocket-protocol":
                subprotocols = (subprotocols or []) + _tokens(value)
            elif name == b"sec-websocket-extensions":
                self._offers += [offer.decode("latin-1") for offer in value.split(b",") if offer.strip()]
        if version != WEBSOCKET_VERSION:
            # RFC 6455 4.4: tell the client which version we speak.
            error_logger.debug("WebSocket over HTTP/2 from %s: version %r", self.client, version)
            self._answer(400, [(b"sec-websocket-version", WEBSOCKET_VERSION)])
            return
        try:
            scope = websocket_scope(
                stream.target,
                "2",
                fields,
                self.h2.tls,
                self.client,
                self.server,
                [protocol.decode("latin-1") for protocol in subprotocols or ()],
                self.config,
                self.state.lifespan_state,
            )
        except InvalidPath as exc:
            error_logger.debug("Refused WebSocket path from %s: %s", self.client, exc)
            self._answer(400)
            return
        if scope is None:
            self._answer(404)  # outside --root-path, which requests keep
            return
        stream.exchange = self.transport
        self.transport.scope = scope
        if self.config.request_id_header:
            stream.request_id = scope["state"]["request_id"]  # echoed by the stream's response
        self._run(scope, b"")

    # -- the handshake's answers, called by WebSocketCycle (reactor thread) --------------------

    def _send_acceptance(self, subprotocol: str | None, headers: list[Any]) -> None:
        fields: list[Any] = list(headers)
        if subprotocol is not None:
            fields.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        if self.config.ws_per_message_deflate and self._offers:
            deflate = PerMessageDeflate()
            agreed = server_extensions_handshake(self._offers, [deflate])
            if agreed is not None:
                fields.append((b"sec-websocket-extensions", agreed))
                self.conn = Connection(ConnectionType.SERVER, extensions=[deflate])
        self.stream.start_response(self.cycle, self.ACCEPTED_STATUS, fields, False)
        self.h2.send_ready(self.stream)

    def deny(self, cycle: WebSocketCycle, status: int, headers: list[Any]) -> None:
        if 200 <= status < 300:
            # RFC 8441 5 / RFC 9110 9.3.6: any 2xx to a CONNECT opens the tunnel; the client
            # would take the denial's body for WebSocket frames.
            raise RuntimeError(f"A WebSocket denial over HTTP/2 cannot be {status}: a 2xx accepts the CONNECT.")
        self.stream.start_response(cycle, status, headers, False)
        self._log_access(status)

    def send_denial_body(self, cycle: WebSocketCycle, body: bytes, more_body: bool) -> Awaitable[None] | None:
        if self._closed:
            cycle.disconnect(CLOSE_ABNORMAL)
            return None
        return self.stream.send_body(cycle, body, more_body)

    def refuse(self, cycle: WebSocketCycle, status: int) -> None:
        if self._closed or self.stream.closed:
            return
        if self.stream.status:  # a denial had begun: its end can no longer be told
            self.force_close()
            return
        self._log_access(status)
        self.h2.reject(self.stream, status)

    def cycle_done(self, cycle: WebSocketCycle) -> None:
        self.transport.app_done()

    # -- helpers -------------------------------------------------------------------------------

    def _with_default_headers(self, headers: list[Any]) -> list[Any]:
        return list(headers)  # the stream adds Server, Date, --header and the request id itself

    def _write(self, data: bytes) -> None:
        # Counted as the session's progress (the send deadline), not in the server's bytes:
        # the connection counts what it frames.
        if data and not self.transport.is_closing():  # (a closing stream takes nothing more)
            self._written += len(data)  # first: the write may pause writing, which reads it
            self.transport.write(data)

    def _answer(self, status: int, extra: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006 (never mutated)
        """The server's own answer to a handshake it will not take (400, 404)."""
        self._log_access(status)
        if extra:
            body = b"%d\n" % status
            fields = [*extra, (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
            self.stream.start_response(None, status, fields, False)
            self.stream.send_body(None, body, False)
        else:
            self.h2.reject(self.stream, status)


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip() for token in value.split(b",") if token.strip()]
