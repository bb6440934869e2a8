"""One HTTP/1.1 connection: an ``asyncio.Protocol`` that moves bytes, keeps deadlines and
carries one exchange at a time.

Reading: the parser (``--http``: server/http1/parsers.py) turns bytes into a request head,
body pieces and the end of the message. A head starts an exchange (``runner.start``: the
ASGI cycle or the WSGI call, server/exchange.py) which the body is fed to. Bytes that arrive
after a complete request (pipelining) stay in the parser's buffer until the response is
done; the next request is parsed from there before waiting on the socket again.

Writing: the exchange calls back through the ``Channel`` methods (server/http1/responding.py);
the response is rendered by server/http1/writer.py.

The connection's states are named in server/http1/states.py.

Flow control: reading pauses when the app leaves more than 64 KiB of body unread, or when
pipelined bytes pile up; ``send()`` waits while the transport's buffer is above its
high-water mark (64 KiB, low 16 KiB).

Deadlines (one at a time, ``Deadline``): the request head from accept or from its first
byte; the body, while the client owes some; keep-alive idle between requests; lingering
close after an error response; and the send deadline (server/http1/timers.py) while bytes
wait for a client that is not taking them, which takes precedence over the others while it
runs: a client that reads nothing is dropped whatever else it is doing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from treadle.reactor import Reactor
from treadle.server.asgi.scope import http_scope
from treadle.server.config import Config
from treadle.server.exchange import Exchange, ResponseState
from treadle.server.http1.closing import REQUEST_GRACE, Closing
from treadle.server.http1.fastparse import NEED_DATA, Data, EndOfMessage, RemoteProtocolError, Request
from treadle.server.http1.parsers import new_parser, parser_limits
from treadle.server.http1.responding import MAX_BUFFERED_BODY, Responder
from treadle.server.http1.states import Deadline, FirstStep, State
from treadle.server.http1.timers import ConnectionControl
from treadle.server.http1.writer import ResponseWriter
from treadle.server.observe import request_id
from treadle.server.observe.logging import error_logger
from treadle.server.state import ServerState
from treadle.server.target import InvalidPath, split_target
from treadle.server.waiters import wake

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
MAX_PIPELINED = 64 * 1024  # bytes of following requests buffered while one is in flight
# Pipelined requests answered at once in one turn of the loop, before the next waits for the
# next turn: other connections wait meanwhile (asyncio bounds its accept loop the same way).
PIPELINE_TURN = 32


_IDLE, _RECEIVING, _RESPONDING, _DISCARDING, _CLOSED, _DRAINING = State
_NO_DEADLINE, _HEAD_DEADLINE, _KEEP_ALIVE, _, _BODY_DEADLINE, _SEND_DEADLINE = Deadline
_START, _DONE = ResponseState.START, ResponseState.DONE
_OUTSIDE, _RUNNING, _NEXT_WAITING = FirstStep
# REQUEST_GRACE is Closing's; named here too, where it has always been importable from.
__all__ = ["HIGH_WATER", "LOW_WATER", "MAX_PIPELINED", "PIPELINE_TURN", "REQUEST_GRACE", "Http1Connection"]


class Http1Connection(Closing, Responder, ConnectionControl, asyncio.Protocol):
    """The connection: its life cycle, reading and deadlines. What it sends is rendered by
    server/http1/responding.py's ``Responder`` half, the ``Channel`` the exchange calls;
    how it closes, and what its deadlines do when they expire, by server/http1/closing.py."""

    SEND_DEADLINE = _SEND_DEADLINE

    def __init__(self, config: Config, state: ServerState, app: Any, loop: Reactor) -> None:
        self.config = config
        self.state = state
        self.app = app  # starts the exchange for each request (a runner: server/apps/appset.py)
        self.loop = loop
        self.parser = new_parser(config.http, parser_limits(config))
        self.writer = ResponseWriter(request_id.field_name(config) if config.request_id_header else None)
        self.transport: Any = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.tls: dict[str, Any] | None = None  # over TLS: the ASGI TLS extension (server/tls.py)
        self.cycle: Exchange | None = None
        self._unstarted: Exchange | None = None  # the exchange whose app _handle_events starts
        self._state = _IDLE
        self._write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        # per request
        self._request: Request | None = None  # until its access line is written
        self._start_time = 0.0
        self._expect_100 = False
        self._keep_alive = False
        self._http10 = False
        self._head_request = False
        self._te_trailers = False
        self._ending_stream = False  # shutdown is ending this event stream (see shutdown())
        # Pipelining: see _handle_events. (ConnectionControl's _held stays a class default
        # until a batch is held: on CPython 3.11, an instance of this class with 30 attributes
        # instead of 28 cost 5k more instructions per request — cycle_bench, valgrind.)
        self._first_step = _OUTSIDE

    # -- asyncio.Protocol callbacks ------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._take_transport(transport, HIGH_WATER, LOW_WATER)
        self._set_timer(_HEAD_DEADLINE, self.config.timeout_request_header)
        if self.state.closing:  # accepted in the turn shutdown began: its request gets the grace
            self.shutdown()

    def data_received(self, data: bytes) -> None:
        self.state.stats.bytes_in += len(data)
        state = self._state
        if state is _CLOSED:
            return  # closing (lingering): input is drained and dropped
        if state is _RESPONDING or state is _DRAINING:
            # The next request is arriving while this one is answered: keep it in the
            # parser's buffer, but stop reading once that buffer gets large.
            parser = self.parser
            parser.receive_data(data)
            if parser.buffered > MAX_PIPELINED:
                self._pause_reading()
            return
        if self._timer_kind == _KEEP_ALIVE:
            self._cancel_timer()  # a request is starting; _parse sets the head deadline
        self.parser.receive_data(data)
        self._handle_events()

    def eof_received(self) -> bool | None:
        # As uvicorn does: a client that shuts down its sending side is treated as gone.
        # Closed by us, whatever is still buffered for it gets the send deadline to go.
        self._close()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._state = _CLOSED
        self._drop_timer()
        state = self.state
        state.connections.discard(self)
        cycle = self.cycle
        if cycle is not None:
            if cycle.response_state != _DONE and self.writer.status:
                self._log_access()  # the client left mid-response; still worth a line
            cycle.disconnect()
            # The exchange holds this connection (its channel) while its app runs; this
            # side lets go, so no reference cycle keeps the connection and its buffers (up
            # to a read of unread body in the parser) alive until the garbage collector runs.
            self.cycle = None
        waiter, self._drain_waiter = self._drain_waiter, None
        wake(waiter)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._state is not _CLOSED:  # a closing connection has armed its own
            self._arm_send_deadline()

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        wake(waiter)
        state = self._state
        if state is _DRAINING:
            self._cancel_timer()  # the send deadline, met
            self._next_cycle()
        elif self._timer_kind == _SEND_DEADLINE and state is not _CLOSED:
            self._restore_deadline()

    # -- reading -------------------------------------------------------------------------------

    def _handle_events(self) -> None:
        """Act on everything the parser can make of the bytes received so far; then start
        the app of a request that arrived among them.

        The app starts last so that it finds the body already fed to its exchange (a GET's
        receive() returns at once) and so that, when it runs eagerly and finishes, nothing
        of this parse is left to do on the connection it has moved to the next request.

        Pipelined requests: an app that answers in its first step leaves the next request,
        if it is here already, to this loop (``_next_cycle``), which starts it eagerly in
        turn, outside the task before it: no recursion, no task inside a task. Up to
        ``PIPELINE_TURN`` of them; the rest on the next turn of the loop. The responses
        after the first are held and written together when this returns: one ``send`` for
        the batch. (A request alone costs none of this but the two tests of ``_first_step``.)
        """
        turns = PIPELINE_TURN
        while True:
            self._parse()
            cycle = self._unstarted
            if cycle is None:
                break
            self._unstarted = None
            self._first_step = _RUNNING
            try:
                cycle.begin()
            finally:
                next_waiting = self._first_step is _NEXT_WAITING
                self._first_step = _OUTSIDE
            if not next_waiting:
                break
            turns -= 1
            if not turns:
                # Requests already here are answered before more are read (as a response
                # left above the high mark does): reading resumes with _read_on, once the
                # buffer holds no complete request.
                self._pause_reading()
                self.loop.call_soon(self._next_turn)
                break
        if self._held is not None:
            self._send_held()

    def _next_turn(self) -> None:
        """The pipelined requests left for the next turn of the loop (``_handle_events``),
        unless they were started meanwhile (by a response that drained, say)."""
        if self._state is _IDLE and self.cycle is None:
            self._handle_events()

    def _parse(self) -> None:
        parser = self.parser
        while self._state is not _CLOSED:
            try:
                event = parser.next_event()
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            kind = type(event)
            if kind is Data:
                self._on_data(event.data)
            elif kind is Request:
                self._on_request(event)
            elif kind is EndOfMessage:
                self._on_end_of_message()
                return
            elif event is NEED_DATA:
                if self.cycle is not None:
                    self._arm_body_timer()
                    return
                self._read_on()  # every request read so far is answered
                if self._timer_kind == _NO_DEADLINE:
                    self._set_timer(_HEAD_DEADLINE, self.config.timeout_request_header)
                return
            else:  # PAUSED cannot happen (we stop at EndOfMessage); ConnectionClosed is not fed
                return

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        if self.cycle is None:
            error_logger.debug("Invalid HTTP request from %s: %s", self.client, exc)
            self._reject(exc.status)
            return
        error_logger.debug("Invalid HTTP request body from %s: %s", self.client, exc)
        self._fail_request(exc.status)

    def _fail_request(self, status: int) -> None:
        """The request's body cannot be received (invalid, too large, stalled): the app learns
        the client is gone; the client gets ``status`` if no response has begun, else the
        connection closes (connection_lost logs a response cut short)."""
        cycle = self.cycle
        assert cycle is not None
        cycle.disconnect()
        if cycle.response_state == _START and self._state is not _DISCARDING:
            self._reject(status)
        else:
            self._close()

    def _on_request(self, request: Request) -> None:
        if self._timer_kind == _HEAD_DEADLINE:
            self._cancel_timer()  # met
        state = self.state
        config = self.config
        http10 = request.http_version == b"1.0"
        self._request = request
        self._start_time = self.loop.time()
        self._http10 = http10
        self._keep_alive = request.keep_alive and not state.closing
        self._head_request = request.method == b"HEAD"
        self._te_trailers = request.te_trailers
        self._expect_100 = self.parser.they_are_waiting_for_100_continue
        self.writer.status = 0  # no response yet
        self.writer.request_id = None  # none until the scope is made (so not for a 503 or 413 before it)

        if request.method == b"CONNECT":
            # RFC 9110 9.3.6: CONNECT asks for a tunnel, and "most origin servers do not
            # implement CONNECT"; nor does this one, nor can ASGI or WSGI carry a tunnel. 9.1:
            # "An origin server that receives a request method that is unrecognized or not
            # implemented SHOULD respond with the 501 (Not Implemented) status code." (The
            # request is not the app's: a 405 would need the app's Allow header.)
            self._reject(501)
            return
        limit = config.limit_concurrency
        if limit is not None and state.active_requests >= limit:
            self._reject(503)
            return
        body_limit = config.limit_request_body_size
        content_length = request.content_length
        if body_limit is not None and content_length is not None and content_length > body_limit:
            self._reject(413)  # a chunked body is refused by the parser, at the chunk that passes the limit
            return
        if request.upgrade is not None and self.handle_upgrade(request):
            return

        try:
            scope = http_scope(
                request.method,
                request.target,
                "1.0" if http10 else "1.1",
                request.headers,
                self.tls,
                self.client,
                self.server,
                config,
                state.lifespan_state,
            )
        except InvalidPath as exc:
            error_logger.debug("Refused request path from %s: %s", self.client, exc)
            self._reject(400)
            return
        if scope is None:
            self._reject(404)  # outside --root-path, which requests keep (--root-path-mode kept)
            return
        if config.request_id_header:
            self.writer.request_id = scope["state"]["request_id"]
        self._state = _RECEIVING
        state.active_requests += 1
        state.count_request()
        self.cycle = self._unstarted = self.app.start(scope, self)

    def handle_upgrade(self, request: Request) -> bool:
        """Protocol upgrades: True if the request was taken over.

        ``websocket`` (with ``--ws`` on) goes to server/http1/websocket.py and ``h2c`` (with
        ``--http2``) to server/http2/upgrade.py, with the transport and the bytes read past
        the request head; either may decline (an h2c request with a body). Anything else is
        served as a plain request — RFC 9110 7.8 lets a server ignore an Upgrade header.
        """
        take_over = self.state.upgrades.get(request.upgrade.strip().lower())
        if take_over is None:
            return False
        try:
            # The target is refused as a request's would be (server/target.py), before
            # the transport is handed over.
            split_target(request.target, "", strict=self.config.path_policy != "lenient")
        except InvalidPath as exc:
            error_logger.debug("Refused upgrade to %r from %s: %s", request.upgrade, self.client, exc)
            self._reject(400)
            return True
        return take_over(self, request)

    def hand_over(self) -> None:
        """Another protocol takes the transport over (a WebSocket, HTTP/2): this connection is
        done with it, without closing it, and is no longer one the server waits for."""
        self._send_held()  # what was answered before the upgrade goes first
        self._state = _CLOSED
        self._drop_timer()
        self.state.connections.discard(self)

    def _on_data(self, data: bytes) -> None:
        cycle = self.cycle
        assert cycle is not None
        if self._state is _DISCARDING:
            return
        self._expect_100 = False  # the client sent the body without waiting
        if cycle.feed_body(data) > MAX_BUFFERED_BODY:
            self._pause_reading()
            if self._timer_kind == _BODY_DEADLINE:
                self._cancel_timer()  # the app is behind, not the client: no body deadline meanwhile

    def _on_end_of_message(self) -> None:
        if self._timer_kind == _BODY_DEADLINE:
            self._cancel_timer()
        self._expect_100 = False  # the whole body is here (e.g. Content-Length: 0)
        if self._state is _DISCARDING:
            self._next_cycle()
            return
        self._state = _RESPONDING
        assert self.cycle is not None
        self.cycle.end_body()

    def _next_cycle(self) -> None:
        """The exchange is over on both sides: start parsing the next request — once the
        client has taken this response. A client that pipelines requests and reads none of
        the answers would otherwise have the buffer grow by one response per request."""
        self.cycle = None
        self._request = None
        self._head_request = False
        if self._write_paused:
            self._state = _DRAINING  # resume_writing comes back here
            return
        self._state = _IDLE
        if self.parser.next_request():
            # Requests already here are answered before more are read: reading stays
            # paused, if the client got ahead, until they are (_parse: NEED_DATA).
            if self._first_step is _RUNNING:
                self._first_step = _NEXT_WAITING  # _handle_events, below us, starts it
                self._hold_writes()  # its response, and those after it, leave together
            else:
                self._handle_events()
        else:
            self._read_on()
            self._set_timer(_KEEP_ALIVE, self.config.timeout_keep_alive)

    def _read_on(self) -> None:
        """Nothing received is left to answer: read again, if pipelining paused it."""
        self._resume_reading()

    def _arm_body_timer(self) -> None:
        """Start (or restart) the clock on the client's next body bytes, unless nothing is
        owed or it is not the client holding them up: reading paused because the app is
        behind, or a client waiting for its 100 Continue."""
        timeout = self.config.timeout_request_body
        if (
            timeout
            and self._state is not _RESPONDING
            and not self._read_paused
            and not self._expect_100
            and self._timer_kind != _SEND_DEADLINE
        ):
            self._set_timer(_BODY_DEADLINE, timeout)

    def _restore_deadline(self) -> None:
        """The client has caught up with a response in progress: back to the body deadline,
        if it owes body bytes. (A complete response waits in DRAINING, never in IDLE.)"""
        self._cancel_timer()
        if self._state is not _RESPONDING:
            self._arm_body_timer()
