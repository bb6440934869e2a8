"""The sending half of an HTTP/2 connection (server/http2/connection.py): what the streams
call to answer, and how their queued bytes become frames on the wire.

Streams queue body bytes (server/http2/stream.py); ``_pump`` sends them as DATA frames, a frame
per stream per turn, within each stream's window and the connection's, while the transport
takes them; a stream's app waits in ``send()`` while its queue is long. What h2 frames is
written once per pass of the loop (``_flush``): the streams answered in one pass share one
``send``. A stream whose response is over (sent, refused, reset) is logged once.

A mixin, as server/http1/responding.py is for HTTP/1.1: the connection holds the state
(``engine``, ``_sending``, ``write_paused``...), this half reads and moves it.
"""

from __future__ import annotations

from typing import Any

import h2.exceptions
from h2.errors import ErrorCodes

from treadle.server.http1.timers import NO_TIMER
from treadle.server.http1.writer import error_body
from treadle.server.http2.stream import HIGH_WATER, Stream
from treadle.server.observe.access import log_request
from treadle.server.observe.logging import error_logger

TRANSPORT_HIGH_WATER = 64 * 1024
TRANSPORT_LOW_WATER = 16 * 1024


class Sender:
    """Answering streams and framing their bytes (reactor thread). Calls back into the
    connection for a stream's end (``_forget``, ``_stream_gone``) and to close (``_close``)."""

    engine: Any
    transport: Any
    loop: Any
    state: Any
    config: Any
    client: tuple[str, int] | None
    _sending: dict[int, Stream]
    write_paused: bool
    _closed: bool
    _receiving: bool
    _flush_scheduled: bool
    _unflushed: int
    _data_out: int
    _window_blocked: bool
    _timer_kind: int
    _written: int

    # -- called by the streams -----------------------------------------------------------------

    def send_ready(self, stream: Stream) -> None:
        """The stream has a head, body bytes, trailers or its end to send."""
        self._sending[stream.id] = stream
        self._pump()
        self._output()

    def credit(self, stream: Stream, size: int) -> None:
        """The app has taken ``size`` bytes of the stream's body: the client may send more."""
        stream.body_at = self.loop.time()  # with its window back, the body's clock restarts
        self.engine.acknowledge_received_data(size, stream.id)
        self._output()

    def send_informational(self, stream: Stream, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.engine.send_headers(stream.id, [(b":status", b"%d" % status), *headers])
        self._output()

    def reject(self, stream: Stream, status: int) -> None:
        """The server's own short answer on one stream (413, 500, 503...); the others go on."""
        body = error_body(status)
        fields = [
            (b":status", b"%d" % status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            *self.state.default_header_pairs(False, False),
        ]
        stream.status = status
        stream.head = None
        stream.pending.clear()
        stream.pending_size = 0
        self._sending.pop(stream.id, None)
        if stream.head_request:
            self.engine.send_headers(stream.id, fields, end_stream=True)
        else:
            self.engine.send_headers(stream.id, fields)
            self.engine.send_data(stream.id, body, end_stream=True)
            stream.body_bytes = len(body)
        self._complete(stream)
        self._output()

    def reset(self, stream: Stream, code: int = ErrorCodes.INTERNAL_ERROR) -> None:
        """Abandon the stream's response: RST_STREAM (the client sees it cut short)."""
        if self._closed:
            return
        self._stream_gone(stream)
        self._send_reset(stream.id, code)
        self._forget(stream)
        self._output()

    # -- framing -------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Send what the streams have queued, a frame each per turn, within the windows."""
        if self._closed:
            return
        try:
            self._frame_queued()
        except h2.exceptions.ProtocolError as exc:  # h2 will send no more on this connection
            error_logger.debug("HTTP/2 connection with %s cannot send: %s", self.client, exc)
            self._close()

    def _frame_queued(self) -> None:
        engine = self.engine
        sending = self._sending
        blocked = False
        while sending and not self.write_paused:
            progress = blocked = False
            for stream_id, stream in list(sending.items()):
                if stream.closed:
                    del sending[stream_id]
                    continue
                if stream.head is not None:
                    head, stream.head = stream.head, None
                    done = stream.end_after_pending and not stream.pending and not stream.trailers
                    engine.send_headers(stream_id, head, end_stream=done)
                    progress = True
                    if done:
                        self._complete(stream)
                        continue
                if stream.pending:
                    window = min(engine.local_flow_control_window(stream_id), engine.max_outbound_frame_size)
                    if window <= 0:
                        blocked = True
                        continue  # blocked until a WINDOW_UPDATE
                    chunk = stream.pending.popleft()
                    if len(chunk) > window:
                        stream.pending.appendleft(chunk[window:])
                        chunk = chunk[:window]
                    stream.pending_size -= len(chunk)
                    last = stream.end_after_pending and not stream.pending and stream.trailers is None
                    engine.send_data(stream_id, chunk, end_stream=last)
                    self._unflushed += len(chunk)
                    self._data_out += len(chunk)
                    progress = True
                    if stream.pending_size <= HIGH_WATER // 2:
                        stream.wake()
                    if last:
                        self._complete(stream)
                    continue
                if stream.end_after_pending:
                    if stream.trailers is not None:
                        engine.send_headers(stream_id, stream.trailers, end_stream=True)
                    else:
                        engine.send_data(stream_id, b"", end_stream=True)
                    progress = True
                    self._complete(stream)
                    continue
                del sending[stream_id]  # nothing more until the app sends again
                stream.wake()
            if self._unflushed >= TRANSPORT_HIGH_WATER:
                # Bodies go to the transport as they are framed, not at the end of the pass:
                # its buffer filling up (pause_writing) is what makes the apps' send() wait.
                self._flush()
            if not progress:
                break
        if not self.write_paused:
            for stream in sending.values():
                if stream.pending_size <= HIGH_WATER // 2:
                    stream.wake()
        self._window_blocked = blocked
        self._watch_stall()

    def _complete(self, stream: Stream) -> None:
        """The response's last frame is out."""
        stream.closed = True
        self._release(stream)
        self._sending.pop(stream.id, None)
        stream.wake()
        self.log_stream(stream)
        if not stream.request_ended:
            # RFC 9113 8.1: the response is complete before the request; ask the client to
            # stop sending it, without error.
            self._send_reset(stream.id, ErrorCodes.NO_ERROR)
        self._forget(stream)

    def _release(self, stream: Stream) -> None:
        """A stream that will take no more body gives back the connection window its unread
        body held (h2 credits the connection's window, and not a closed stream's)."""
        if stream.unacked:
            self.engine.acknowledge_received_data(stream.unacked, stream.id)
            stream.unacked = 0

    def _send_reset(self, stream_id: int, code: int) -> None:
        try:
            self.engine.reset_stream(stream_id, code)
        except h2.exceptions.StreamClosedError:
            pass  # closed on the wire already (its END_STREAM came in the same read)

    def _flush(self) -> None:
        """Write what h2 has framed. Frames are written together, once per loop pass: at the
        end of ``data_received`` for what its events made, else from a callback that
        ``_output`` schedules — so the streams answered in one pass share one ``send``."""
        self._flush_scheduled = False
        self._unflushed = 0
        data = self.engine.data_to_send()
        if data and not self._closed:
            self._write(data)

    def _output(self) -> None:
        """h2 has frames to write: they go at the end of this pass (see ``_flush``)."""
        if not self._receiving and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    # -- the send deadline ----------------------------------------------------------------------
    #
    # Response bytes can wait for the client in two places: the transport's buffer, when the
    # client does not read (writing paused), and the streams' queues, when it reads but grants
    # no flow-control window (RFC 9113 6.9: a receiver may hold a window at zero for as long as
    # it likes). Either way its streams, their apps and their buffers are held; a client that
    # takes nothing for --timeout-send is dropped, as on HTTP/1.1. "Taken" is body the window
    # let go, and, while writing is paused, bytes the kernel took: not PING or SETTINGS
    # answers, which a client could otherwise trade for keeping a zero window open for ever.

    def _taken(self) -> int:
        taken = self._data_out
        if self.write_paused or self._closed:  # closed: what is left goes to the kernel, or nowhere
            taken += self._written - self.transport.get_write_buffer_size()
        return taken

    def _window_shut(self) -> bool:
        """Whether a stream has body to send and no window to send it in, as of now (the flag
        ``_frame_queued`` leaves may be stale: a stream reset since no longer waits)."""
        engine = self.engine
        return any(
            stream.pending and not stream.closed and engine.local_flow_control_window(stream.id) <= 0
            for stream in self._sending.values()
        )

    def _watch_stall(self) -> None:
        """Arm the send deadline if response bytes wait on the client (another deadline, idle
        or the GOAWAY round trip, keeps the timer: neither applies while streams are busy long)."""
        if (self.write_paused or self._window_blocked) and self._timer_kind == NO_TIMER and not self._closed:
            self._arm_send_deadline()

    # -- logging -------------------------------------------------------------------------------

    def log_stream(self, stream: Stream) -> None:
        """A stream's response is over (sent, refused, reset or cut short): count it, log it, once."""
        if stream.logged:
            return
        stream.logged = True
        now = self.loop.time()
        seconds = now - stream.started_at
        stats = self.state.stats
        stats.response_done(stream.status, seconds, now)
        stats.responses_http2 += 1
        exchange = stream.exchange
        client = exchange.scope["client"] if exchange is not None else self.client  # as a trusted proxy said
        log_request(
            self.config,
            client,
            stream.method,
            stream.target,
            "2",
            stream.status,
            stream.body_bytes,
            seconds,
            stream.request_headers,
            stream.request_id,
        )

    def log_error(self, message: str, *args: Any) -> None:
        error_logger.error(message, *args)
