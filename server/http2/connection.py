"""One HTTP/2 connection (RFC 9113): an ``asyncio.Protocol`` carrying many streams at once,
each with its own exchange — the same ASGI and WSGI exchanges an HTTP/1.1 connection uses.

Reading: bytes go to ``h2`` (server/http2/engine.py), after ``FrameGuard`` has looked at
their frame headers (server/http2/frames.py); h2's events start streams, feed them body,
end or reset them. A request head becomes a scope (server/asgi/scope.py) and an exchange
(``runner.start``), exactly as on HTTP/1.1; the stream (server/http2/stream.py) is the
``Channel`` it answers through.

Request bodies are credited back only as apps take them; the connection's own window is
made as large as every stream's together (``max streams × stream window``), so a slow app
holds back its own stream and never the others. Writing — streams' bytes framed within the
flow-control windows, fairly, and the send deadline — is the class's other half:
server/http2/sending.py.

Defences (docs/http2.md): a stream over the concurrent limit is refused alone
(REFUSED_STREAM); header blocks are bounded however they are split; resets the client sends
(Rapid Reset, CVE-2023-44487) or makes the server send (MadeYouReset, CVE-2025-8671) and
frames the server must answer (PING, SETTINGS) are held to budgets, past which the connection
ends with GOAWAY ENHANCE_YOUR_CALM; reading stops while the client does not read what we
send; an idle connection, and one that has carried ``--h2-max-requests``, is closed politely.

Graceful shutdown (RFC 9113 6.8): a GOAWAY announcing the highest possible stream id and a
PING; once the PING comes back (the client has seen the first GOAWAY, so anything it sent
before is here), a GOAWAY with the real last stream id; streams up to it finish, later ones
are refused; the connection closes when the last stream is done.
"""

from __future__ import annotations

import asyncio
from enum import IntEnum
from typing import Any

import h2.events
import h2.exceptions
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from treadle.reactor import Reactor
from treadle.server.asgi.scope import http_scope
from treadle.server.config import Config
from treadle.server.http1.timers import ConnectionControl
from treadle.server.http1.writer import is_event_stream
from treadle.server.http2.budget import Budget
from treadle.server.http2.defences import BUDGET_PERIOD, Defences
from treadle.server.http2.engine import MAX_WINDOW, StreamRefused, new_engine
from treadle.server.http2.frames import FrameGuard, HeaderBlockTooLarge
from treadle.server.http2.sending import TRANSPORT_HIGH_WATER, TRANSPORT_LOW_WATER, Sender
from treadle.server.http2.stream import Stream, TunnelStream, read_head
from treadle.server.observe import request_id
from treadle.server.observe.logging import error_logger
from treadle.server.state import ServerState
from treadle.server.target import InvalidPath

GOAWAY_ROUND_TRIP = 1.0  # at most this long for the PING after the first GOAWAY to come back
LAST_STREAM_ID = 2**31 - 1
_SHUTDOWN_PING = b"treadle\x00"


class Deadline(IntEnum):
    """Which deadline the connection's one timer is armed for (server/http1/timers.py)."""

    NONE = 0
    IDLE = 1  # no stream open: --timeout-keep-alive
    GOAWAY_ROUND_TRIP = 2  # the first GOAWAY's PING has not come back
    SEND = 3  # response bytes wait for the client, who has taken none of them (--timeout-send)


_NO_DEADLINE, _IDLE, _ROUND_TRIP, _SEND_DUE = Deadline


class Http2Connection(Defences, Sender, ConnectionControl, asyncio.Protocol):
    SEND_DEADLINE = _SEND_DUE

    def __init__(self, config: Config, state: ServerState, app: Any, loop: Reactor) -> None:
        self.config = config
        self.state = state
        self.app = app  # starts the exchange for each stream (a runner: server/apps/appset.py)
        self.loop = loop
        # Extended CONNECT (RFC 8441), with WebSockets on: server/http2/websocket.py's connect.
        self.websocket = state.websocket_connect
        self.engine = new_engine(
            config.h2_max_concurrent_streams,
            config.h2_stream_window,
            config.limit_request_head_size,
            websockets=self.websocket is not None,
        )
        # --request-id-header: the response field that echoes the id (server/observe/request_id.py)
        self.request_id_field = request_id.field_name(config) if config.request_id_header else b""
        self.guard = FrameGuard(config.limit_request_head_size, self._control_frame, self._charge_reset)
        self.resets = Budget(config.h2_max_resets, BUDGET_PERIOD, loop.time)
        self.control_frames = Budget(config.h2_max_control_frames, BUDGET_PERIOD, loop.time)
        self.transport: Any = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.tls: dict[str, Any] | None = None  # over TLS: the ASGI TLS extension (server/tls.py)
        self.streams: dict[int, Stream] = {}
        self._sending: dict[int, Stream] = {}  # streams with something to send, in turn order
        self.write_paused = False
        self._closed = False
        self._last_stream_id = LAST_STREAM_ID  # streams above it are refused (after a GOAWAY)
        self._goaway_sent = False
        self._client_goaway = False  # the client's GOAWAY came: close once its streams are done
        self._served = 0  # streams started on this connection (--h2-max-requests)
        self._over_budget = False
        self._receiving = False  # in data_received: its frames are written when it ends
        self._flush_scheduled = False
        self._unflushed = 0  # body bytes framed since the last write to the transport
        self._data_out = 0  # body bytes framed since the start: the client's window let them go
        self._window_blocked = False  # a stream has body to send and no window to send it in
        self._body_timer: asyncio.TimerHandle | None = None  # --timeout-request-body (_check_bodies)

    # -- asyncio.Protocol callbacks ------------------------------------------------------------

    def connection_made(self, transport: Any, upgrade: Any = None) -> None:
        """Start the connection: our SETTINGS first (RFC 9113 3.4). ``upgrade``: the HTTP/1.1
        request that asked for ``h2c`` (RFC 7540 3.2), answered on stream 1."""
        self._take_transport(transport, TRANSPORT_HIGH_WATER, TRANSPORT_LOW_WATER)
        engine = self.engine
        if upgrade is None:
            engine.initiate_connection()
        else:
            engine.initiate_upgrade_connection(upgrade.settings)
        # Every stream's window fits in the connection's: a stalled stream stalls only itself.
        whole = min(self.config.h2_max_concurrent_streams * self.config.h2_stream_window, MAX_WINDOW)
        if whole > 65535:
            engine.increment_flow_control_window(whole - 65535)
        if upgrade is not None:
            self._start_stream(1, upgrade.headers, ended=True)
        self._flush()
        if not self.streams:
            self._set_timer(_IDLE, self.config.timeout_keep_alive)
        if self.state.closing:  # made as shutdown began (a TLS handshake, a preface): GOAWAY,
            self.shutdown()  # whose round-trip deadline replaces the idle one

    def data_received(self, data: bytes) -> None:
        self.state.stats.bytes_in += len(data)
        if self._closed:
            return
        try:
            cuts = self.guard.scan(data)
        except HeaderBlockTooLarge as exc:
            error_logger.debug("HTTP/2 client %s: %s", self.client, exc)
            self._go_away(ErrorCodes.ENHANCE_YOUR_CALM)
            return
        if self._over_budget:  # a frame of this read spent a budget: h2 parses none of it
            self._go_away(ErrorCodes.ENHANCE_YOUR_CALM)
            return
        self._receiving = True
        try:
            # h2 parses a read whole before its events can be looked at, and some budgets are
            # spent by what only h2 sees (a reset it sends for a broken frame: MadeYouReset).
            # So a read of many frames goes to h2 in slices (FrameGuard says where): past a
            # budget, the rest is never parsed (a read of 256 KiB can hold thousands of
            # streams' header blocks to decode).
            start = 0
            for cut in (*(cuts or ()), len(data)):
                if not self._parse(data[start:cut] if start or cut < len(data) else data):
                    return  # closed
                if self._over_budget:
                    break
                start = cut
            else:
                self._pump()
        finally:
            self._receiving = False
        if self._over_budget:
            self._go_away(ErrorCodes.ENHANCE_YOUR_CALM)
            return
        self._flush()

    def _parse(self, data: bytes) -> bool:
        """Hand ``data`` to h2 and act on its events, up to one that spends a budget; False if
        the connection is closed."""
        try:
            events = self.engine.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued a GOAWAY with the error's code: send it, and close.
            error_logger.debug("HTTP/2 protocol error from %s: %s", self.client, exc)
            self._flush()
            self._close()
            return False
        for event in events:
            self._on_event(event)
            if self._closed:
                return False
            if self._over_budget:
                # Charged by this event (a reset h2 sent for the client's frame): the events
                # after it — streams it also opened — start no app.
                break
        return True

    def eof_received(self) -> bool | None:
        return None  # the client is gone: close (its streams learn of it in connection_lost)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._drop_timer()
        if self._body_timer is not None:
            self._body_timer.cancel()
        state = self.state
        state.connections.discard(self)
        for stream in list(self.streams.values()):
            if not stream.closed:
                stream.closed = True
                self.log_stream(stream)  # cut short; still worth a line
            if stream.exchange is not None:
                stream.exchange.disconnect()
            stream.wake()
        self._sending.clear()

    def pause_writing(self) -> None:
        # Nothing more is read while the client does not read what we send: a client that
        # floods PINGs or SETTINGS without reading their ACKs cannot grow our buffer.
        self.write_paused = True
        self.transport.pause_reading()
        self._watch_stall()

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self._closed:
            self.transport.resume_reading()
        self._pump()
        self._output()

    # -- h2's events ---------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        kind = type(event)
        if kind is h2.events.DataReceived:
            self._on_data(event)
        elif kind is h2.events.RequestReceived:
            if self._timer_kind == _IDLE:
                self._cancel_timer()
            self._start_stream(event.stream_id, event.headers, event.stream_ended)
        elif kind is h2.events.StreamEnded:
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.exchange is not None and not stream.request_ended:
                stream.request_ended = True
                stream.exchange.end_body()
        elif kind is h2.events.StreamReset:
            if not event.remote_reset:
                # h2 reset the stream itself, for a frame that broke the stream's rules: a
                # reset the client provoked, charged like its own (MadeYouReset, CVE-2025-8671),
                # since the client's stream slot is free while its request may still run.
                self._charge_reset()
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._stream_gone(stream)
        elif kind is StreamRefused:
            self._charge_reset()
        elif kind is h2.events.PingAckReceived:
            if event.ping_data == _SHUTDOWN_PING and self._timer_kind == _ROUND_TRIP:
                self._cancel_timer()
                self._final_goaway()
        elif kind is h2.events.ConnectionTerminated:
            # The client's GOAWAY (RFC 9113 6.8): it opens no more streams, and those it has
            # opened may still be answered. h2 closes its state machine to every frame after a
            # GOAWAY either way (python-hyper/h2 issue 1199): reopened here, as it was, so the
            # streams in flight can be finished; no new stream is accepted.
            self._last_stream_id = min(self._last_stream_id, self.engine.highest_inbound_stream_id)
            if event.error_code != ErrorCodes.NO_ERROR or not self.streams:
                self._close()
            else:
                self._client_goaway = True
                self.engine.state_machine.state = ConnectionState.SERVER_OPEN
        # WindowUpdated, RemoteSettingsChanged: _pump runs after the events; the rest
        # (SettingsAcknowledged, PingReceived, PriorityUpdated...) h2 has answered itself.

    def _start_stream(self, stream_id: int, headers: Any, ended: bool) -> None:
        """A request head: refuse it, answer it with an error, or start its exchange."""
        if stream_id > self._last_stream_id:
            # After our final GOAWAY (RFC 9113 6.8): not processed; the client may retry it elsewhere.
            self.engine.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        if len(self.streams) >= self.config.h2_max_concurrent_streams:
            # h2 counts the streams open on the wire; a stream reset (by the client, or by h2
            # for a frame the client broke on purpose: MadeYouReset) is no longer one, but its
            # app may run on. Those count here: the apps one connection has running stay
            # within the limit it advertised, and each stream refused past it is charged as a
            # reset, so a client that keeps trying runs out of budget.
            self._send_reset(stream_id, ErrorCodes.REFUSED_STREAM)
            self._charge_reset()
            return
        head = read_head(headers)
        method, path, fields, content_length = head.method, head.path, head.fields, head.content_length
        # RFC 8441: an extended CONNECT for a WebSocket (h2 lets :protocol through only when
        # we announced SETTINGS_ENABLE_CONNECT_PROTOCOL, only with WebSockets on).
        tunnel = method == b"CONNECT" and head.protocol == b"websocket" and self.websocket is not None
        stream = (TunnelStream if tunnel else Stream)(stream_id, self, method, path, self.loop.time())
        stream.te_trailers = head.te_trailers
        stream.expect_100 = head.expect_100
        self.streams[stream_id] = stream
        self._served += 1
        config = self.config
        limit = config.h2_max_requests
        if limit is not None and self._served >= limit or stream_id >= LAST_STREAM_ID - 2:
            self.shutdown()  # the last one this connection carries: a GOAWAY, then it closes
        if method == b"CONNECT" and not tunnel:
            self.reject(stream, 501)  # RFC 9110 9.3.6: we are an origin server, not a tunnel
            return
        concurrency = config.limit_concurrency
        if concurrency is not None and self.state.active_requests >= concurrency:
            self.reject(stream, 503)
            return
        if tunnel:
            self.websocket(self, stream, fields)  # server/http2/websocket.py
            return
        body_limit = config.limit_request_body_size
        if body_limit is not None and content_length is not None and content_length > body_limit:
            self.reject(stream, 413)
            return
        try:
            scope = http_scope(
                method,
                path,
                "2",
                fields,
                self.tls,
                self.client,
                self.server,
                config,
                self.state.lifespan_state,
            )
        except InvalidPath as exc:  # --path-policy, as on HTTP/1.1 (server/target.py)
            error_logger.debug("Refused request path from %s on stream %d: %s", self.client, stream_id, exc)
            self.reject(stream, 400)
            return
        if scope is None:
            self.reject(stream, 404)  # outside --root-path, which requests keep
            return
        stream.request_headers = scope["headers"]
        if config.request_id_header:
            stream.request_id = scope["state"]["request_id"]
        state = self.state
        state.active_requests += 1
        state.count_request()
        exchange = stream.exchange = self.app.start(scope, stream)
        if ended:
            stream.request_ended = True
            exchange.end_body()
        elif self._body_timer is None and config.timeout_request_body:
            self._body_timer = self.loop.call_later(config.timeout_request_body, self._check_bodies)
        exchange.begin()

    def _on_data(self, event: Any) -> None:
        stream = self.streams.get(event.stream_id)
        received = event.flow_controlled_length
        if stream is None or stream.closed or stream.exchange is None:
            # Refused, answered or reset already: nobody will take it; credit the window back.
            self.engine.acknowledge_received_data(received, event.stream_id)
            return
        data = event.data
        stream.body_received += len(data)
        limit = self.config.limit_request_body_size
        if limit is not None and stream.body_received > limit and not stream.tunnel:
            self.engine.acknowledge_received_data(received, event.stream_id)
            self._fail_body(stream, 413)
            return
        stream.body_at = self.loop.time()
        stream.expect_100 = False  # the client sent the body without waiting
        stream.unacked += received  # credited back by Stream.want_body once the app has taken it
        stream.exchange.feed_body(data)

    def _stream_gone(self, stream: Stream) -> None:
        """The stream was reset: its app learns the client is gone; nothing more is sent."""
        if not stream.closed:
            stream.closed = True
            self.log_stream(stream)
        self._release(stream)
        self._sending.pop(stream.id, None)
        if stream.exchange is not None:
            stream.exchange.disconnect()
        stream.wake()

    # -- the end of a stream ---------------------------------------------------------------------

    def exchange_done(self, stream: Stream) -> None:
        """The stream's app has returned."""
        self.state.active_requests -= 1
        if stream.ending_stream and not stream.closed and not self._closed:
            stream.end_after_pending = True  # an event stream shutdown ended: end it properly
            self.send_ready(stream)
        stream.exchange = None
        self._forget(stream)

    def _forget(self, stream: Stream) -> None:
        """Drop a stream once both its response and its app are done."""
        if stream.closed and stream.exchange is None:
            self.streams.pop(stream.id, None)
            if not self.streams and not self._closed:
                if self._client_goaway:
                    self._close()  # the client said it is done, and so are its streams
                elif not self._goaway_sent:
                    self._set_timer(_IDLE, self.config.timeout_keep_alive)
                elif self._timer_kind != _ROUND_TRIP:
                    self._close()  # the final GOAWAY is out and its last stream is done
                # else: the final GOAWAY comes with the PING's answer (_final_goaway closes)

    # -- closing -------------------------------------------------------------------------------

    @staticmethod
    def is_event_stream(headers: Any) -> bool:
        return is_event_stream(headers)

    def shutdown(self) -> None:
        """Graceful shutdown, in two steps (RFC 9113 6.8): a GOAWAY that lets every stream the
        client may have sent through, and a PING; the real last stream id once it is back."""
        if self._closed or self._goaway_sent:
            return
        self._goaway_sent = True
        self._write_goaway(LAST_STREAM_ID, ErrorCodes.NO_ERROR)
        self.engine.ping(_SHUTDOWN_PING)
        self._flush()
        self._set_timer(_ROUND_TRIP, GOAWAY_ROUND_TRIP)
        for stream in list(self.streams.values()):
            if stream.tunnel:
                if stream.transport is not None and stream.transport.session is not None:
                    stream.transport.session.shutdown()  # a WebSocket: closed with 1012
            elif stream.status and not stream.closed and is_event_stream(stream.response_headers):
                self.end_event_stream(stream)

    def _final_goaway(self) -> None:
        self._last_stream_id = self.engine.highest_inbound_stream_id
        self._write_goaway(self._last_stream_id, ErrorCodes.NO_ERROR)
        if not self.streams:
            self._close()

    def end_event_stream(self, stream: Stream) -> None:
        """As on HTTP/1.1 (server/http1/connection.py): an event stream has no end of its own,
        so shutdown tells its app the client is gone, and ends the stream when the app is done."""
        if stream.ending_stream or stream.closed or stream.exchange is None:
            return
        stream.ending_stream = True
        stream.exchange.end_stream()

    def _write_goaway(self, last_stream_id: int, code: int) -> None:
        """A GOAWAY written by us, not h2: h2 would close its state machine to every frame after
        its own, and the streams in flight still have to be served."""
        frame = GoAwayFrame(stream_id=0, last_stream_id=last_stream_id, error_code=code)
        self._flush()
        if not self._closed:
            data = frame.serialize()
            self._write(data)

    def _go_away(self, code: int) -> None:
        """End the connection now: GOAWAY with ``code``, every stream's app told, closed."""
        if self._closed:
            return
        self._write_goaway(self.engine.highest_inbound_stream_id, code)
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self._flush()  # what is framed goes out first: the last response, a GOAWAY
            self._closed = True
            self._drop_timer()
            self._close_transport()  # the send deadline bounds how long the client may take it

    def force_close(self) -> None:
        self._closed = True
        self._drop_timer()
        self.transport.abort()

    def _timer_fired(self, kind: int) -> None:
        if kind == _SEND_DUE:
            if not (self._closed or self.write_paused or self._window_shut()):
                return  # it caught up; the next stall arms the deadline again
            if self._took_nothing():
                error_logger.info(
                    "HTTP/2 client %s took nothing of its responses for %s s: dropping it.",
                    self.client,
                    self.config.timeout_send,
                )
                self.force_close()
            return
        if self._closed:
            return
        if kind == _IDLE:
            self._go_away(ErrorCodes.NO_ERROR)
        elif kind == _ROUND_TRIP:
            self._final_goaway()
