"""One HTTP/2 stream: the ``Channel`` (server/exchange.py) its exchange answers through, and
``read_head``, which reads its request head (pseudo-headers apart).

An exchange — the ASGI cycle or the WSGI call — does not know it is on HTTP/2: it calls
``start_response``, ``send_body``, ``send_trailers``... as it would on an HTTP/1.1
connection. Here those become frames:

- the response head becomes a HEADERS frame, sent with the first body bytes (so that a
  response with no body ends on its HEADERS frame, without an empty DATA frame);
- body bytes are queued, and the connection sends them as DATA frames within the stream's
  and the connection's flow-control windows, taking turns with the other streams
  (server/http2/connection.py); ``send()`` waits while this stream has more than
  ``HIGH_WATER`` bytes queued, or the transport is full;
- trailers become a closing HEADERS frame (only if the request said ``TE: trailers``);
- ``abort`` becomes RST_STREAM INTERNAL_ERROR.

Request body: bytes the client sends are credited back to it (WINDOW_UPDATE) only as the app
takes them, so a slow app holds back its own stream, never the connection or other streams.

Response fields are held to the same rules as on HTTP/1.1 (``check_header``: a token name, no
CR, LF or NUL, surrounding whitespace stripped), and RFC 9113 8.2's: names go out in lower
case, and the fields of HTTP/1.1's connection management (Connection, Keep-Alive,
Proxy-Connection, Transfer-Encoding, Upgrade) are dropped — HTTP/2 frames a message itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Iterable, NamedTuple

from treadle.server.exchange import ResponseState
from treadle.server.http1.fastparse.grammar import is_digits
from treadle.server.http1.writer import check_header
from treadle.server.observe.request_id import response_field

HIGH_WATER = 64 * 1024  # body bytes queued on a stream before the app's send() waits

# RFC 9113 8.2.2: connection-specific fields must not appear in an HTTP/2 message.
_CONNECTION_FIELDS = frozenset((b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"))
_DONE = ResponseState.DONE


class RequestHead(NamedTuple):
    """What a request's header list says, pseudo-headers apart from the fields."""

    method: bytes
    path: bytes
    protocol: bytes  # RFC 8441 4: extended CONNECT's :protocol
    fields: list[tuple[bytes, bytes]]  # the regular fields, ``host`` first (from :authority)
    te_trailers: bool
    expect_100: bool
    content_length: int | None


def read_head(headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    """Read a header list h2 has validated (RFC 9113 8.3: pseudo-headers first, each once)."""
    method = path = authority = protocol = b""
    fields = []
    te_trailers = expect_100 = False
    content_length = None
    for name, value in headers:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":protocol":
                protocol = value
            continue
        if name == b"te":
            te_trailers = b"trailers" in value.lower()
        elif name == b"expect":
            expect_100 = value.lower() == b"100-continue"
        elif name == b"content-length":
            content_length = int(value)  # h2 has checked it is digits
        fields.append((name, value))
    # RFC 9113 8.3.1: :authority is what HTTP/1.1 puts in Host; an app looks for host.
    if authority and not any(name == b"host" for name, _ in fields):
        fields.insert(0, (b"host", authority))
    return RequestHead(method, path, protocol, fields, te_trailers, expect_100, content_length)


class Stream:
    """The state of one request and its response on an HTTP/2 connection (reactor thread)."""

    tunnel = False  # a TunnelStream carries a WebSocket instead

    __slots__ = (
        "id",
        "conn",
        "exchange",
        "method",
        "target",
        "started_at",
        "head_request",
        "te_trailers",
        "expect_100",
        "body_received",
        "unacked",
        "body_at",
        "request_ended",
        "status",
        "head",
        "remaining",
        "trailers_announced",
        "trailers",
        "body_bytes",
        "pending",
        "pending_size",
        "end_after_pending",
        "waiter",
        "closed",
        "logged",
        "ending_stream",
        "response_headers",
        "request_headers",
        "request_id",
    )

    def __init__(self, stream_id: int, conn: Any, method: bytes, target: bytes, started_at: float) -> None:
        self.id = stream_id
        self.conn = conn  # the Http2Connection
        self.exchange: Any = None
        self.method = method
        self.target = target
        self.started_at = started_at
        self.head_request = method == b"HEAD"
        self.te_trailers = False
        self.expect_100 = False
        self.body_received = 0
        self.unacked = 0  # flow-controlled bytes received and not yet credited back
        self.body_at = started_at  # the client's clock for body (--timeout-request-body) restarts
        self.request_ended = False
        # the response
        self.status = 0
        self.head: list[tuple[bytes, bytes]] | None = None  # rendered, not yet sent
        self.remaining: int | None = None  # what a Content-Length still promises
        self.trailers_announced = False
        self.trailers: list[tuple[bytes, bytes]] | None = None  # to send after the body
        self.body_bytes = 0
        self.pending: deque[bytes] = deque()  # body bytes not yet in DATA frames
        self.pending_size = 0
        self.end_after_pending = False  # END_STREAM once what is pending has gone
        self.waiter: asyncio.Future | None = None  # the app's send(), while too much is pending
        self.closed = False  # reset, or its response is complete
        self.logged = False
        self.ending_stream = False  # shutdown ends this event stream
        self.response_headers: Iterable[Any] = ()
        self.request_headers: list[tuple[bytes, bytes]] = []  # for the access log's fields
        self.request_id: str | None = None  # --request-id-header's id, once the scope is made

    # -- the Channel interface, called by the exchange ----------------------------------------

    def want_body(self, cycle: Any) -> None:
        if self.closed:
            return
        conn = self.conn
        if self.expect_100 and cycle.response_state == ResponseState.START:
            self.expect_100 = False
            self.body_at = conn.loop.time()  # the client's turn for the body begins
            conn.send_informational(self, 100, [])
        if self.unacked and cycle.body_size == 0:
            conn.credit(self, self.unacked)  # the app has taken what was sent: let more come
            self.unacked = 0

    def send_early_hint(self, cycle: Any, headers: list[tuple[bytes, bytes]]) -> None:
        if not self.closed and self.status == 0:
            fields = [check_header(header) for header in headers]
            self.conn.send_informational(self, 103, [(name.lower(), value) for name, value in fields])

    def start_response(self, cycle: Any, status: int, headers: Iterable[Any], trailers: bool) -> None:
        content_length = None
        has_date = has_server = False
        fields = [(b":status", b"%d" % status)]
        for header in headers:
            name, value = check_header(header)
            name = name.lower()
            if name in _CONNECTION_FIELDS:
                continue
            if name == b"content-length":
                if is_digits(value) is None:
                    raise RuntimeError(f"Invalid Content-Length {value!r}.")
                if content_length is not None:
                    if int(value) != content_length:
                        raise RuntimeError("Conflicting Content-Length headers.")
                    continue
                content_length = int(value)
            elif name == b"te":
                continue  # RFC 9113 8.2.2: only in requests
            elif name == b"date":
                has_date = True
            elif name == b"server":
                has_server = True
            fields.append((name, value))
        fields.extend(self.conn.state.default_header_pairs(has_date, has_server))
        if self.request_id is not None:  # --request-id-header: echoed, unless the app set it
            field = response_field(self.conn.request_id_field, self.request_id, fields)
            if field is not None:
                fields.append(field)
        if self.head_request or status == 204 or status == 304:
            self.remaining = 0
        else:
            self.remaining = content_length
        self.status = status
        self.head = fields
        self.response_headers = headers
        self.trailers_announced = trailers
        if self.conn.state.closing and self.conn.is_event_stream(headers):
            self.conn.loop.call_soon(self.conn.end_event_stream, self)

    def send_body(self, cycle: Any, data: bytes, more_body: bool) -> Awaitable[None] | None:
        if self.closed:
            cycle.disconnect()
            return None
        if self.head_request or self.status in (204, 304):
            data = b""
        else:
            remaining = self.remaining
            if remaining is not None:
                remaining -= len(data)
                if remaining < 0:
                    self._length_error(f"Response content longer than Content-Length by {-remaining} bytes.")
                if not more_body and remaining and not self.trailers_announced:
                    self._length_error(f"Response content shorter than Content-Length by {remaining} bytes.")
                self.remaining = remaining
        if data:
            self.pending.append(data)
            self.pending_size += len(data)
            self.body_bytes += len(data)
        if not more_body and not self.trailers_announced:
            self.end_after_pending = True
        self.conn.send_ready(self)
        if self.closed or not more_body:
            return None
        if self.pending_size > HIGH_WATER or self.conn.write_paused:
            if self.waiter is None:
                self.waiter = self.conn.loop.create_future()
            return self.waiter
        return None

    def send_trailers(self, cycle: Any, headers: Iterable[Any], more_trailers: bool) -> None:
        if self.closed:
            return
        checked = [check_header(header) for header in headers]
        if self.te_trailers:
            kept = self.trailers or []
            kept.extend((name.lower(), value) for name, value in checked if name.lower() not in _CONNECTION_FIELDS)
            self.trailers = kept
        if not more_trailers:
            if self.remaining:
                self._length_error(f"Response content shorter than Content-Length by {self.remaining} bytes.")
            self.end_after_pending = True
            self.conn.send_ready(self)

    async def send_file(self, cycle: Any, file: Any, offset: int, count: int) -> None:
        """``zerocopysend`` on HTTP/2: the bytes have to be framed, so they are read (in the
        default executor: disk reads block) and sent as body, with the usual backpressure."""
        loop = self.conn.loop
        position = offset
        end = offset + count
        while position < end and not self.closed:
            chunk = await loop.run_in_executor(None, _read_at, file, position, min(end - position, HIGH_WATER))
            if not chunk:
                self.conn.reset(self)
                raise RuntimeError(f"The file ended {end - position} bytes before the {count} promised.")
            position += len(chunk)
            waiter = self.send_body(cycle, chunk, True)
            if waiter is not None:
                await waiter

    def send_error_response(self, cycle: Any, status: int) -> None:
        if not self.closed:
            self.conn.reject(self, status)

    def abort(self, cycle: Any) -> None:
        if not self.closed and not self.ending_stream:
            self.conn.log_stream(self)
            self.conn.reset(self)

    def cycle_done(self, cycle: Any) -> None:
        self.conn.exchange_done(self)

    # -- helpers ------------------------------------------------------------------------------

    def _length_error(self, message: str) -> None:
        """The app's body disagrees with its Content-Length: a 500 if nothing has gone, else a
        reset stream; the app gets the RuntimeError."""
        self.conn.log_error("%s", message)
        if self.head is not None and not self.pending:
            self.head = None
            self.conn.reject(self, 500)
        else:
            self.conn.log_stream(self)
            self.conn.reset(self)
        raise RuntimeError(message)

    def wake(self) -> None:
        """Let the app's send() go on (its queue drained, or the stream is gone)."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class TunnelStream(Stream):
    """A stream whose DATA frames carry a WebSocket (RFC 8441; server/http2/websocket.py): its
    transport hears when the queue drains or the stream is gone, as a socket's protocol would.
    Once a session takes it, the session logs its handshake; the connection does not log the
    stream again (one refused before that, 503 or 501, is logged as any stream)."""

    __slots__ = ("transport",)
    tunnel = True

    def __init__(self, stream_id: int, conn: Any, method: bytes, target: bytes, started_at: float) -> None:
        super().__init__(stream_id, conn, method, target, started_at)
        self.transport: Any = None  # the StreamTransport, once the session is made

    def wake(self) -> None:
        super().wake()
        if self.transport is not None:
            self.transport.drained()


def _read_at(file: Any, offset: int, size: int) -> bytes:
    file.seek(offset)
    return file.read(size)
