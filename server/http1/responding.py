"""The answering half of an HTTP/1.1 connection: the ``Channel`` its exchange calls
(server/exchange.py), the server's own error responses, and the access log line.

``Responder`` is a mixin of ``Http1Connection`` (server/http1/connection.py), kept apart so
that each file reads as one direction: that one takes bytes in and decides what the
connection does next; this one renders what goes out (through server/http1/writer.py) and
hands the connection back to reading, keep-alive or closing when a response is complete.
It uses the connection's attributes (``transport``, ``writer``, ``cycle``, ``_state``, the
per-request flags) and its closing and reading methods.
"""

from __future__ import annotations

from typing import Any, Awaitable, Iterable

from treadle.server.exchange import Exchange, ResponseState
from treadle.server.http1.states import Deadline, State
from treadle.server.http1.writer import CONTINUE, Framing, ResponseLengthError, informational, is_event_stream
from treadle.server.observe.access import log_request
from treadle.server.observe.logging import error_logger

MAX_BUFFERED_BODY = 64 * 1024  # unread request body before we stop reading the socket
# A file is sent in slices this large: the send deadline sees progress once per slice.
SENDFILE_SLICE = 256 * 1024

_RESPONDING, _DISCARDING, _CLOSED = State.RESPONDING, State.DISCARDING, State.CLOSED
_SEND_DEADLINE = Deadline.SEND
_START = ResponseState.START
_NO_BODY = Framing.NO_BODY


class Responder:
    """The ``Channel`` methods and response endings of ``Http1Connection`` (reactor thread)."""

    transport: Any
    loop: Any
    state: Any
    config: Any
    writer: Any
    cycle: Any
    client: Any

    # -- the Channel interface, called by the exchange ----------------------------------------

    def want_body(self, cycle: Exchange) -> None:
        if cycle is not self.cycle or self._state is _CLOSED:
            return
        if self._expect_100 and cycle.response_state == _START:
            # Never after the final response head: that would corrupt the stream.
            self._expect_100 = False
            self._write(CONTINUE)
            self._arm_body_timer()
        if self._read_paused:
            # The app waits for more than is buffered: it took what there was (receive()),
            # or asks for more in one read (WSGI's read(CONTENT_LENGTH)). MAX_BUFFERED_BODY
            # bounds what piles up for an app that is not reading, not for one that asks.
            self._resume_reading()
            self._arm_body_timer()

    def send_early_hint(self, cycle: Exchange, headers: list[tuple[bytes, bytes]]) -> None:
        # RFC 9110 15.2: no 1xx response to an HTTP/1.0 client; RFC 8297: as many as the app likes.
        if cycle is self.cycle and self._state is not _CLOSED and not self._http10:
            self._write(informational(103, headers))

    def start_response(self, cycle: Exchange, status: int, headers: Iterable[Any], trailers: bool) -> None:
        # The client still waiting to be told to send its body, or a server shutting down,
        # means this response is the connection's last.
        closing = self.state.closing
        keep_alive = self._keep_alive and not self._expect_100 and not closing
        writer = self.writer
        writer.start(
            status,
            headers,
            trailers,
            self._http10,
            self._head_request,
            self._te_trailers,
            keep_alive,
            self.state.default_headers,
        )
        self._keep_alive = writer.keep_alive
        if closing and is_event_stream(headers):
            self.loop.call_soon(self._end_event_stream)  # begun after shutdown did: end it too

    def send_body(self, cycle: Exchange, data: bytes, more_body: bool) -> Awaitable[None] | None:
        if self._state is _CLOSED or cycle is not self.cycle or self.transport.is_closing():
            # A failed write closes the transport before connection_lost runs; an app that
            # never yields must still learn of it here rather than write into the void.
            cycle.disconnect()
            return None
        writer = self.writer
        try:
            out = writer.body(data, more_body)
        except ResponseLengthError as exc:
            self._length_error(exc)
            raise
        head = writer.head  # the head goes with the first piece (writer.take_head, inlined)
        if head is None:
            self._write(out)
        else:
            writer.head = None
            self._write(out, head)
        if not more_body and not self.writer.trailers_announced:
            self._response_complete()
        elif self._write_paused and self._state is not _CLOSED:
            if self._drain_waiter is None:
                self._drain_waiter = self.loop.create_future()
            return self._drain_waiter
        return None

    def send_trailers(self, cycle: Exchange, headers: Iterable[Any], more_trailers: bool) -> None:
        if self._state is _CLOSED or cycle is not self.cycle:
            return
        self._write(self.writer.trailers(headers, more_trailers))
        if not more_trailers:
            self._response_complete()

    async def send_file(self, cycle: Exchange, file: Any, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` as more body (ASGI's zerocopysend).

        ``loop.sendfile`` once what is buffered (the held-back head first) is on the wire,
        so the bytes never pass through Python where the kernel can send them (the reactor
        reads and writes them itself where it cannot: TLS). The caller ends the body with
        ``send_body``, as after any chunk.

        The file goes in slices of ``SENDFILE_SLICE``, each counted as taken when the kernel
        has it, under the send deadline: a client that takes none of a slice for
        ``--timeout-send`` is dropped, as one that stops reading any other body is.
        """
        if self._state is _CLOSED or cycle is not self.cycle or self.transport.is_closing():
            cycle.disconnect()
            return
        writer = self.writer
        try:
            self._write(writer.file_start(count))
        except ResponseLengthError as exc:
            self._length_error(exc)
            raise
        if writer.framing is _NO_BODY or not count:
            return
        self._send_held()  # the kernel sends the file: what comes before it must be out first
        self._arm_send_deadline()
        sent = 0
        try:
            while sent < count:
                size = min(SENDFILE_SLICE, count - sent)
                done = await self.loop.sendfile(self.transport, file, offset + sent, size)
                sent += done
                self._written += done
                if done < size:
                    break  # the file is shorter than promised
        finally:
            if self._timer_kind == _SEND_DEADLINE and self._state is not _CLOSED and not self._write_paused:
                self._restore_deadline()
        if sent != count:
            self._close()  # the framing promised bytes the file no longer has
            raise RuntimeError(f"The file ended {count - sent} bytes before the {count} promised.")
        self._write(writer.file_end(sent))

    def send_error_response(self, cycle: Exchange, status: int) -> None:
        if cycle is self.cycle and self._state is not _CLOSED:
            self._reject(status)

    def abort(self, cycle: Exchange) -> None:
        if cycle is self.cycle and self._state is not _CLOSED and not self._ending_stream:
            if self.writer.head is not None:
                self.writer.head = None  # nothing on the wire yet: a clean 500 is still possible
                self._reject(500)
                return
            self._log_access()
            self._close()

    def cycle_done(self, cycle: Exchange) -> None:
        self.state.active_requests -= 1
        if self._ending_stream and cycle is self.cycle and self._state is not _CLOSED:
            # The app of an event stream that shutdown ended is done: end the body and close.
            self._write(self.writer.end_stream())
            self._log_access()
            self._close_after_response()

    # -- responses -----------------------------------------------------------------------------

    def _length_error(self, exc: ResponseLengthError) -> None:
        """The app's body disagrees with its Content-Length (the exception goes on to it)."""
        writer = self.writer
        if writer.head is not None:
            # Nothing is on the wire yet, so the client can still get a clean 500.
            writer.head = None
            error_logger.error("%s Sending 500 instead.", exc)
            self._reject(500)
        else:
            error_logger.error("%s Closing the connection.", exc)
            self._log_access()
            self._close()

    def _response_complete(self) -> None:
        self._log_access()
        if not self._keep_alive:
            self._close_after_response()
        elif self._state is _RESPONDING:
            self._next_cycle()
        else:
            # The app answered without reading the whole body: read and drop the rest so
            # the next request can be parsed (bounded by the body size limit).
            self._state = _DISCARDING
            self._resume_reading()
            self._arm_body_timer()

    def _reject(self, status: int) -> None:
        """Answer with a short plain-text error and close (used before or instead of the app)."""
        self._write(self.writer.error(status, self._head_request, self.state.default_headers(False, False)))
        self._log_access()  # only if a request head was parsed
        self._close_lingering()

    def _log_access(self) -> None:
        """A response is over (sent, rejected or cut short): count it, and log it — once.

        Several paths can end a response (the app fails after starting it, then the client
        leaves; an error response, then its lingering close): whichever comes first writes
        the line, and clears ``_request`` so the others find nothing left to log.
        """
        request = self._request
        if request is None:
            return
        self._request = None
        writer = self.writer
        now = self.loop.time()
        seconds = now - self._start_time
        self.state.stats.response_done(writer.status, seconds, now)
        cycle = self.cycle
        client = cycle.scope["client"] if cycle is not None else self.client  # as a trusted proxy said
        version = "1.0" if self._http10 else "1.1"
        status, size, headers = writer.status, writer.body_bytes, request.headers
        log_request(
            self.config, client, request.method, request.target, version, status, size, seconds, headers,
            writer.request_id,
        )
