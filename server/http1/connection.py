"""One HTTP/1.1 connection: an ``asyncio.Protocol`` that parses with h11 and writes itself.

Reading: h11 is the parser (its grammar checks are the reason to use it). A fresh
``h11.Connection`` is made per request — it costs about a microsecond and lets us support
HTTP/1.0 keep-alive, which h11's own state machine refuses. Bytes that arrive after a
complete request (pipelining) stay in h11's buffer until the response is done; the next
request is parsed from there before waiting on the socket again.

Writing: response heads and body framing (Content-Length, chunked, close-delimited) are
rendered here, so the hot path is a few byte joins, and so Content-Length can be enforced
before a byte too many reaches the wire. The head is held back and sent with the first
body chunk: a typical response leaves in one ``write``.

Flow control: reading pauses when the app leaves more than 64 KiB of body unread, or when
pipelined bytes pile up; ``send()`` waits while the transport's buffer is above its
high-water mark (64 KiB, low 16 KiB).

Timers (one per connection, as only one applies at a time): header deadline from accept or
from the first byte of a request until its head is complete; keep-alive idle between
requests; lingering close after an error response.
"""

from __future__ import annotations

import asyncio
import re
from http import HTTPStatus
from typing import Any, Awaitable, Iterable

import h11

from treadle.server.apps.mount import Runner
from treadle.server.asgi.http import ASGI_VERSION, DONE, START, RequestCycle
from treadle.server.config import Config
from treadle.server.http1.timers import NO_TIMER, ConnectionControl
from treadle.server.observe.logging import access_logger, error_logger, format_client
from treadle.server.state import ServerState
from treadle.server.target import split_target
from treadle.server.waiters import wake

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
MAX_BUFFERED_BODY = 64 * 1024  # unread request body before we stop reading the socket
MAX_PIPELINED = 64 * 1024  # bytes of following requests buffered while one is in flight
FIRST_REQUEST_GRACE = 1.0  # on shutdown, for a new connection's first bytes (a round trip)
LINGER_TIME = 2.0  # after an error response, drain the client's input this long (gunicorn)

_REASONS = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in _REASONS.items()}

# RFC 9110 5.1: field-name = token; 5.5: a field value must not contain CR, LF or NUL (a
# sender of those could split the response), and does not include leading or trailing
# whitespace: that is stripped, as gunicorn does (Django's WSGI handler sends Set-Cookie
# values with a leading space).
_is_token = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_bad_value = re.compile(rb"[\x00\r\n]").search

# Response fields an app sends on every response (content-type, cache-control...) are
# checked once: the rendered line of each valid (name, value) tuple is kept, up to a bound
# so that apps sending unique values (cookies, etags) cannot grow it. The fields the server
# acts on, or replaces, are never cached: their values matter per response.
_FIELD_LINES: dict[tuple[bytes, bytes], bytes] = {}
_MAX_FIELD_LINES = 512
_SERVER_SET = frozenset((b"content-length", b"transfer-encoding", b"connection", b"date", b"server"))

_HEADER_TIMER, _KEEPALIVE_TIMER, _LINGER_TIMER, _BODY_TIMER = 1, 2, 3, 4  # NO_TIMER is 0
_LENGTH, _CHUNKED, _CLOSE_DELIMITED, _NO_BODY = 0, 1, 2, 3


def _check_header(header: Any) -> tuple[bytes, bytes]:
    try:
        name, value = header
    except (TypeError, ValueError):
        raise RuntimeError(f"Invalid ASGI header {header!r}: expected a [name, value] pair.")
    if type(name) is not bytes or type(value) is not bytes:
        raise RuntimeError(
            f"ASGI header names and values must be bytes, got {type(name).__name__} and "
            f"{type(value).__name__} in {header!r}."
        )
    if _is_token(name) is None:
        raise RuntimeError(f"Invalid header name {name!r}.")
    if _bad_value(value) is not None:
        raise RuntimeError(f"Invalid header value {value!r} for header {name!r}: CR, LF and NUL are not allowed.")
    return name, value.strip(b" \t")


def _is_event_stream(headers: Iterable[Any]) -> bool:
    """Whether validated response headers say ``content-type: text/event-stream``."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lstrip().lower().startswith(b"text/event-stream")
    return False


class H11Protocol(ConnectionControl, asyncio.Protocol):
    # The parser's vocabulary, which everything below is written against: h11's here;
    # server/http_fast.py swaps in server/fastparse's, the only difference between the engines.
    _ProtocolError: Any = h11.RemoteProtocolError
    _Request: Any = h11.Request
    _Data: Any = h11.Data
    _EndOfMessage: Any = h11.EndOfMessage
    _NEED_DATA: Any = h11.NEED_DATA

    def __init__(self, config: Config, state: ServerState, app: Runner, loop: asyncio.AbstractEventLoop):
        self.config = config
        self.state = state
        self.app = app  # starts the app's cycle for each request (server/apps.py)
        self.loop = loop
        self.conn = self._new_parser()
        self.transport: Any = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.tls = False  # over TLS: scopes say "https"/"wss", WSGI says wsgi.url_scheme "https"
        self.cycle: RequestCycle | None = None
        self._unstarted: RequestCycle | None = None  # the cycle whose app _handle_events starts
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_kind = NO_TIMER
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future | None = None
        # per request
        self._request_done = False  # the client's EndOfMessage was seen
        self._discarding = False  # response done; reading and dropping the rest of the body
        self._pipelined = 0
        self._body_received = 0
        self._expect_100 = False
        self._keep_alive = False
        self._http10 = False
        self._head_request = False
        self._te_trailers = False
        self._request_line: tuple[str, str, str] | None = None
        self._start_time = 0.0
        # per response
        self._head: bytes | None = None  # rendered, not yet written
        self._framing = _LENGTH
        self._remaining = 0
        self._app_trailers = False
        self._send_trailers = False
        self._trailer_lines: list[bytes] = []
        self._status = 0
        self._bytes_sent = 0
        self._response_headers: Iterable[Any] = ()  # as the app gave them (read at shutdown)
        self._ending_stream = False  # shutdown is ending this event stream (see shutdown())

    # -- asyncio.Protocol callbacks (reactor thread) -----------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, (tuple, list)) and len(sock) >= 2:
            self.server = (str(sock[0]), int(sock[1]))
        self.tls = transport.get_extra_info("ssl_object") is not None
        self._set_timer(_HEADER_TIMER, self.config.timeout_request_header)

    def data_received(self, data: bytes) -> None:
        self.state.stats.bytes_in += len(data)
        if self._closed:
            return  # closing (lingering): input is drained and dropped
        if self._request_done:
            # The next request is arriving while this one is answered: keep it in h11's
            # buffer, but stop reading once that buffer gets large.
            self.conn.receive_data(data)
            self._pipelined += len(data)
            if self._pipelined > MAX_PIPELINED:
                self._pause_reading()
            return
        if self._timer_kind == _KEEPALIVE_TIMER:
            self._cancel_timer()  # a request is starting; _handle_events sets the header deadline
        self.conn.receive_data(data)
        self._handle_events()

    def eof_received(self) -> bool | None:
        # As uvicorn does: a client that shuts down its sending side is treated as gone.
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._drop_timer()
        state = self.state
        state.connections.discard(self)
        cycle = self.cycle
        if cycle is not None:
            if cycle.response_state != DONE and self._status:
                self._log_access()  # the client left mid-response; still worth a line
            cycle.disconnect()
        waiter, self._drain_waiter = self._drain_waiter, None
        wake(waiter)
        if state.closing and not state.connections and state.on_all_closed is not None:
            state.on_all_closed()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        wake(waiter)

    # -- parsing ------------------------------------------------------------------------------

    def _new_parser(self) -> Any:
        """A parser for the next request (one per request: see the module docstring)."""
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self.config.limit_request_head_size)

    def _restart_parser(self) -> bool:
        """Make the parser ready for the next request; True if bytes of it are buffered."""
        data = self.conn.trailing_data[0]
        self.conn = self._new_parser()
        if not data:
            return False
        self.conn.receive_data(data)
        return True

    def _handle_events(self) -> None:
        """Act on everything the parser can make of the bytes received so far; then start
        the app of a request that arrived among them.

        The app starts last so that it finds the body already fed to its cycle (a GET's
        receive() returns at once) and so that, when it runs eagerly and finishes, nothing
        of this parse is left to do on the connection it has moved to the next request.
        """
        self._parse()
        cycle = self._unstarted
        if cycle is not None:
            self._unstarted = None
            cycle.begin()

    def _parse(self) -> None:
        conn = self.conn
        Data, Request, EndOfMessage = self._Data, self._Request, self._EndOfMessage
        while not self._closed:
            try:
                event = conn.next_event()
            except self._ProtocolError as exc:
                self._protocol_error(exc)
                return
            etype = type(event)
            if etype is Data:
                self._on_data(event.data)
            elif etype is Request:
                self._on_request(event)
            elif etype is EndOfMessage:
                self._on_end_of_message()
                return
            elif event is self._NEED_DATA:
                if self.cycle is not None:
                    self._arm_body_timer()
                elif self._timer_kind == NO_TIMER:
                    self._set_timer(_HEADER_TIMER, self.config.timeout_request_header)
                return
            else:  # PAUSED cannot happen (we stop at EndOfMessage); ConnectionClosed is not fed
                return

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        cycle = self.cycle
        if cycle is None:
            error_logger.debug("Invalid HTTP request from %s: %s", self.client, exc)
            self._reject(exc.error_status_hint)
            return
        error_logger.debug("Invalid HTTP request body from %s: %s", self.client, exc)
        self._fail_request(400)

    def _fail_request(self, status: int) -> None:
        """The request's body cannot be received (invalid, too large, stalled): the app learns
        the client is gone; the client gets ``status`` if no response has begun, else the
        connection closes (connection_lost logs a response cut short)."""
        cycle = self.cycle
        assert cycle is not None
        cycle.disconnect()
        if cycle.response_state == START and not self._discarding:
            self._reject(status)
        else:
            self._close()

    def _request_facts(self, event: h11.Request) -> tuple | None:
        """What the server needs from a request head, found by one pass over its fields:
        ``(headers, version, keep_alive, content_length, chunked, te_trailers, upgrade,
        head_size)``; None if the request was rejected here.

        The fast engine's parser has worked these out already (server/http_fast.py)."""
        headers = [(name, value) for name, value in event.headers]
        http_version = event.http_version
        if http_version != b"1.1" and http_version != b"1.0":
            if http_version[:2] != b"1.":
                self._reject(505)  # RFC 9112 2.3: another major version is not ours to answer
                return None
            http_version = b"1.1"  # a higher 1.x minor version is answered as 1.1
        http10 = http_version == b"1.0"
        keep_alive = not http10
        content_length = None
        te_trailers = False
        chunked = False
        upgrade = None
        # h11 enforces the head limit only on heads that arrive in pieces; measure whole
        # ones here (request line + one "name: value CRLF" per field, as on the wire).
        head_size = len(event.method) + len(event.target) + 12
        for name, value in headers:
            head_size += len(name) + len(value) + 4
            if name == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif http10 and b"keep-alive" in tokens:
                    keep_alive = True
            elif name == b"content-length":
                content_length = int(value)  # h11 has validated it
            elif name == b"te":
                te_trailers = b"trailers" in value.lower()
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"upgrade":
                upgrade = value
        version = "1.0" if http10 else "1.1"
        return headers, version, keep_alive, content_length, chunked, te_trailers, upgrade, head_size

    def _on_request(self, event: h11.Request) -> None:
        self._cancel_timer()
        state = self.state
        config = self.config
        facts = self._request_facts(event)
        if facts is None:
            return
        headers, version, keep_alive, content_length, chunked, te_trailers, upgrade, head_size = facts
        http10 = version == "1.0"
        method = event.method.decode("ascii")
        target = event.target
        self._request_line = (method, target.decode("latin-1"), version)
        self._start_time = self.loop.time()
        self._http10 = http10
        self._keep_alive = keep_alive and not state.closing
        self._head_request = method == "HEAD"
        self._te_trailers = te_trailers
        self._expect_100 = self.conn.they_are_waiting_for_100_continue
        self._request_done = False
        self._body_received = 0
        self._head = None
        self._status = 0
        self._bytes_sent = 0

        if head_size > config.limit_request_head_size:
            self._reject(431)
            return
        if chunked and content_length is not None:
            # RFC 9112 6.1: both framings at once is a request-smuggling vector; h11 would
            # follow Transfer-Encoding, we refuse (and, as required, close).
            self._reject(400)
            return
        limit = config.limit_concurrency
        if limit is not None and state.active_requests >= limit:
            self._reject(503)
            return
        body_limit = config.limit_request_body_size
        if body_limit is not None and content_length is not None and content_length > body_limit:
            self._reject(413)
            return

        if upgrade is not None and self.handle_upgrade(event, headers, upgrade):
            return

        root_path = config.root_path
        split = split_target(target, root_path, config.root_path_kept)
        if split is None:
            self._reject(404)  # outside --root-path, which requests keep (--root-path-mode kept)
            return
        path, raw_path, query = split
        scope = {
            "type": "http",
            "asgi": ASGI_VERSION.copy(),
            "http_version": version,
            "method": method,
            "scheme": "https" if self.tls else "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": root_path,
            "headers": headers,
            "client": self.client,
            "server": self.server,
            "state": state.lifespan_state.copy(),
            "extensions": {"http.response.trailers": {}, "http.response.zerocopysend": {}},
        }
        state.active_requests += 1
        state.count_request()
        self.cycle = self._unstarted = self.app.start(scope, self)

    def handle_upgrade(self, event: h11.Request, headers: list[tuple[bytes, bytes]], upgrade: bytes) -> bool:
        """Hook for protocol upgrades (WebSocket): return True to take the request over.

        A websocket upgrade, with WebSockets enabled (``--ws``), is handed to
        ``server.ws_protocol`` with the transport and the bytes read past the request head.
        Anything else declines, and the request is served as plain HTTP — which RFC 9110
        7.8 allows: a server may ignore an Upgrade header.
        """
        take_over = self.state.ws_upgrade
        if take_over is None or upgrade.lower() != b"websocket":
            return False
        self._closed = True  # this protocol is done: the transport now belongs to the websocket
        self._drop_timer()
        self.state.connections.discard(self)
        take_over(self, event, headers)
        return True

    def _on_data(self, data: bytes) -> None:
        cycle = self.cycle
        assert cycle is not None
        self._body_received += len(data)
        limit = self.config.limit_request_body_size
        if limit is not None and self._body_received > limit:
            self._fail_request(413)
            return
        if self._discarding:
            return
        self._expect_100 = False  # the client sent the body without waiting
        if cycle.feed_body(data) > MAX_BUFFERED_BODY:
            self._pause_reading()
            self._cancel_timer()  # the app is behind, not the client: no body deadline meanwhile

    def _on_end_of_message(self) -> None:
        self._request_done = True
        if self._timer_kind == _BODY_TIMER:
            self._cancel_timer()
        self._expect_100 = False  # the whole body is here (e.g. Content-Length: 0)
        if self._discarding:
            self._discarding = False
            self._next_cycle()
        else:
            assert self.cycle is not None
            self.cycle.end_body()

    def _next_cycle(self) -> None:
        """The exchange is over on both sides: start parsing the next request."""
        self.cycle = None
        self._request_line = None
        self._head_request = False
        pipelined = self._restart_parser()
        self._request_done = False
        self._pipelined = 0
        self._resume_reading()
        if pipelined:
            self._handle_events()
        else:
            self._set_timer(_KEEPALIVE_TIMER, self.config.timeout_keep_alive)

    # -- the Channel interface, called by RequestCycle (reactor thread) ------------------------

    def want_body(self, cycle: RequestCycle) -> None:
        if cycle is not self.cycle or self._closed:
            return
        if self._expect_100 and cycle.response_state == START:
            # Never after the final response head: that would corrupt the stream.
            self._expect_100 = False
            self.transport.write(_CONTINUE)
            self.state.stats.bytes_out += len(_CONTINUE)
            self._arm_body_timer()
        if self._read_paused and cycle.body_size <= MAX_BUFFERED_BODY:
            self._resume_reading()
            self._arm_body_timer()

    def _arm_body_timer(self) -> None:
        """Start (or restart) the clock on the client's next body bytes, unless nothing is
        owed or it is not the client holding them up: reading paused because the app is
        behind, or a client waiting for its 100 Continue."""
        timeout = self.config.timeout_request_body
        if timeout and not self._request_done and not self._read_paused and not self._expect_100:
            self._set_timer(_BODY_TIMER, timeout)

    def start_response(
        self, cycle: RequestCycle, status: int, headers: Iterable[Any], trailers: bool
    ) -> None:
        has_date = has_server = False
        content_length = None
        lines = [_STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
        known = _FIELD_LINES.get
        for header in headers:
            try:
                line = known(header)
            except TypeError:  # a list pair: unhashable, so checked every time
                line = None
            if line is not None:
                lines.append(line)
                continue
            name, value = _check_header(header)
            lname = name.lower()
            if lname == b"content-length":
                if not value.isdigit():
                    raise RuntimeError(f"Invalid Content-Length {value!r}.")
                if content_length is not None:
                    if int(value) != content_length:
                        raise RuntimeError("Conflicting Content-Length headers.")
                    continue
                content_length = int(value)
            elif lname == b"transfer-encoding":
                continue  # the server chooses the framing
            elif lname == b"connection":
                if b"close" in value.lower():
                    self._keep_alive = False
                continue  # replaced by our own, consistent with what we will do
            elif lname == b"date":
                has_date = True
            elif lname == b"server":
                has_server = True
            line = name + b": " + value + b"\r\n"
            if lname not in _SERVER_SET and len(_FIELD_LINES) < _MAX_FIELD_LINES and type(header) is tuple:
                _FIELD_LINES[header] = line
            lines.append(line)

        if self._head_request or status == 204 or status == 304:
            framing = _NO_BODY
        elif content_length is not None:
            framing = _LENGTH
            self._remaining = content_length
        elif not self._http10:
            framing = _CHUNKED
            lines.append(b"transfer-encoding: chunked\r\n")
        else:
            framing = _CLOSE_DELIMITED
            self._keep_alive = False
        if self._expect_100 or self.state.closing:
            # The client still waits to be told to send its body, or we are shutting down.
            self._keep_alive = False
            if self.state.closing and _is_event_stream(headers):
                self.loop.call_soon(self._end_event_stream)  # begun after shutdown did: end it too
        if not self._keep_alive:
            lines.append(b"connection: close\r\n")
        elif self._http10:
            lines.append(b"connection: keep-alive\r\n")
        lines.append(self.state.default_headers(has_date, has_server))
        lines.append(b"\r\n")
        self._framing = framing
        self._app_trailers = trailers
        self._send_trailers = trailers and framing == _CHUNKED and self._te_trailers
        self._trailer_lines = []
        self._status = status
        self._response_headers = headers
        self._head = b"".join(lines)

    def send_body(self, cycle: RequestCycle, data: bytes, more_body: bool) -> Awaitable[None] | None:
        if self._closed or cycle is not self.cycle or self.transport.is_closing():
            # A failed write closes the transport before connection_lost runs; an app that
            # never yields must still learn of it here rather than write into the void.
            cycle.disconnect()
            return None
        framing = self._framing
        if framing == _CHUNKED:
            if data:
                out = b"".join((b"%x\r\n" % len(data), data, b"\r\n"))
            else:
                out = b""
            if not more_body and not self._app_trailers:
                out += b"0\r\n\r\n"
        elif framing == _LENGTH:
            remaining = self._remaining - len(data)
            if remaining < 0:
                self._length_error(f"Response content longer than Content-Length by {-remaining} bytes.")
            if not more_body and remaining:
                self._length_error(f"Response content shorter than Content-Length by {remaining} bytes.")
            self._remaining = remaining
            out = data
        elif framing == _NO_BODY:
            out = b""
            data = b""
        else:
            out = data
        head = self._head
        if head is not None:
            self._head = None
            out = head + out
        if out:
            self.transport.write(out)
            self.state.stats.bytes_out += len(out)
        self._bytes_sent += len(data)
        if not more_body and not self._app_trailers:
            self._response_complete()
        elif self._write_paused and not self._closed:
            if self._drain_waiter is None:
                self._drain_waiter = self.loop.create_future()
            return self._drain_waiter
        return None

    def send_trailers(self, cycle: RequestCycle, headers: Iterable[Any], more_trailers: bool) -> None:
        if self._closed or cycle is not self.cycle:
            return
        for header in headers:
            name, value = _check_header(header)
            if self._send_trailers:
                self._trailer_lines.append(name + b": " + value + b"\r\n")
        if more_trailers:
            return
        out = self._head or b""
        self._head = None
        if self._framing == _CHUNKED:
            out += b"0\r\n" + b"".join(self._trailer_lines) + b"\r\n"
        if out:
            self.transport.write(out)
            self.state.stats.bytes_out += len(out)
        self._response_complete()

    async def send_file(self, cycle: Any, file: Any, offset: int, count: int) -> None:
        """Send ``count`` bytes of ``file`` from ``offset`` as more body (ASGI's zerocopysend).

        ``os.sendfile`` once what is buffered (the held-back head first) is on the wire, so
        the bytes never pass through Python; the reactor falls back to reads where the
        kernel cannot. The caller ends the body with ``send_body``, as after any chunk.
        """
        self.send_body(cycle, b"", True)  # writes the held-back head; notices a closed connection
        framing = self._framing
        if self._closed or framing == _NO_BODY or not count:
            return
        if framing == _LENGTH:
            if count > self._remaining:
                self._length_error(f"Response content longer than Content-Length by {count - self._remaining} bytes.")
            self._remaining -= count
        elif framing == _CHUNKED:
            self.transport.write(b"%x\r\n" % count)
        try:
            sent = await self.loop.sendfile(self.transport, file, offset, count)
        except NotImplementedError:  # TLS: the kernel cannot encrypt, so the bytes pass through here
            sent = await self._copy_file(file, offset, count)
        self._bytes_sent += sent
        if sent != count:
            self._close()  # the framing promised bytes the file no longer has
            raise RuntimeError(f"The file ended {count - sent} bytes before the {count} promised.")
        if framing == _CHUNKED:
            self.transport.write(b"\r\n")

    async def _copy_file(self, file: Any, offset: int, count: int) -> int:
        """send_file by reads (in the default executor: disk reads block) and writes, with flow control."""
        file.seek(offset)
        sent = 0
        while sent < count and not self._closed:
            data = await self.loop.run_in_executor(None, file.read, min(count - sent, HIGH_WATER))
            if not data:
                break
            self.transport.write(data)
            sent += len(data)
            if self._write_paused:
                if self._drain_waiter is None:
                    self._drain_waiter = self.loop.create_future()
                await self._drain_waiter
        return sent

    def send_error_response(self, cycle: RequestCycle, status: int) -> None:
        if cycle is self.cycle and not self._closed:
            self._reject(status)

    def abort(self, cycle: RequestCycle) -> None:
        if cycle is self.cycle and not self._closed and not self._ending_stream:
            if self._head is not None:
                self._head = None  # nothing on the wire yet: a clean 500 is still possible
                self._reject(500)
                return
            self._log_access()
            self._close()

    def cycle_done(self, cycle: RequestCycle) -> None:
        self.state.active_requests -= 1
        if self._ending_stream and cycle is self.cycle and not self._closed:
            self._finish_event_stream()

    # -- responses and closing -----------------------------------------------------------------

    def _length_error(self, message: str) -> None:
        if self._head is not None:
            # Nothing is on the wire yet, so the client can still get a clean 500.
            self._head = None
            error_logger.error("%s Sending 500 instead.", message)
            self._reject(500)
        else:
            error_logger.error("%s Closing the connection.", message)
            self._log_access()
            self._close()
        raise RuntimeError(message)

    def _response_complete(self) -> None:
        self._log_access()
        if not self._keep_alive:
            if self._request_done:
                self._close()
            else:
                self._close_lingering()
        elif self._request_done:
            self._next_cycle()
        else:
            # The app answered without reading the whole body: read and drop the rest so
            # the next request can be parsed (bounded by the body size limit).
            self._discarding = True
            self._resume_reading()
            self._arm_body_timer()

    def _reject(self, status: int) -> None:
        """Answer with a short plain-text error and close (used before or instead of the app)."""
        reason = _REASONS.get(status, b"Error")
        body = b"%d %s\n" % (status, reason)
        head = b"".join(
            (
                _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status,
                b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                self.state.default_headers(False, False),
                b"\r\n",
            )
        )
        if self._head_request:
            body = b""
        self.transport.write(head + body)
        self.state.stats.bytes_out += len(head) + len(body)
        self._status = status
        self._bytes_sent = len(body)
        self._log_access()  # only if a request line was parsed
        self._close_lingering()

    def _log_access(self) -> None:
        """A response is over (sent, rejected or cut short): count it, and log it — once.

        Several paths can end a response (the app fails after starting it, then the client
        leaves; an error response, then its lingering close): whichever comes first writes
        the line, and clears ``_request_line`` so the others find nothing left to log.
        """
        request_line = self._request_line
        if request_line is None:
            return
        self._request_line = None
        now = self.loop.time()
        self.state.stats.response_done(self._status, now - self._start_time, now)
        if not self.config.access_log or not access_logger.isEnabledFor(20):
            return
        cycle = self.cycle
        client = cycle.scope["client"] if cycle is not None else self.client  # as a trusted proxy said
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d %d %.1fms',
            format_client(client),
            request_line[0],
            request_line[1],
            request_line[2],
            self._status,
            self._bytes_sent,
            (now - self._start_time) * 1000.0,
        )

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._drop_timer()
            self.transport.close()

    def _close_lingering(self) -> None:
        """Close after an early response without making the kernel send RST over it.

        Closing with unread input makes the kernel reset the connection, which can destroy
        the response before the client reads it. So: send FIN, keep reading (and dropping)
        for a short while, then close.
        """
        if self._closed:
            return
        self._closed = True
        transport = self.transport
        try:
            can_half_close = transport.can_write_eof()
        except Exception:
            can_half_close = False
        if not can_half_close:
            self._drop_timer()
            transport.close()
            return
        transport.write_eof()
        self._resume_reading()
        self._set_timer(_LINGER_TIMER, LINGER_TIME)

    def shutdown(self) -> None:
        """Graceful shutdown: close if idle between requests; a request being answered, or
        being received, is served first (and the connection closed after it).

        A connection accepted with no request yet counts as one being received: its client
        connected while we listened and the request is on its way (closing would lose it —
        a reload under load shows this). It has ``FIRST_REQUEST_GRACE`` to start sending.
        """
        if self._closed:
            return
        if self.cycle is not None and not self._discarding:
            self._keep_alive = False
            if self._status and _is_event_stream(self._response_headers):
                self._end_event_stream()
        elif self._timer_kind == _HEADER_TIMER:
            if not self.conn.trailing_data[0]:
                self._set_timer(_HEADER_TIMER, min(self.config.timeout_request_header, FIRST_REQUEST_GRACE))
        else:
            self._close()

    def _end_event_stream(self) -> None:
        """Shutdown ends an event stream at once rather than after the graceful timeout.

        An event stream (``text/event-stream``, WHATWG HTML 9.2) has no end of its own: its
        app would run until the graceful timeout and then be cut off mid-stream. Any other
        response may be finishing real work, so it gets the whole graceful timeout; only
        event streams are ended early. The cycle tells its app the client is gone (or
        cancels it, or stops the WSGI worker's next write); when the app is done,
        ``cycle_done`` ends the body properly (the last chunk) and closes. Browsers then
        reconnect, to a server that is up.
        """
        cycle = self.cycle
        if cycle is None or self._closed or self._ending_stream:
            return
        self._ending_stream = True
        cycle.end_stream()

    def _finish_event_stream(self) -> None:
        """The app of an event stream that shutdown ended is done: end the body and close."""
        out = self._head or b""
        self._head = None
        if self._framing == _CHUNKED:
            out += b"0\r\n\r\n"
        if out:
            self.transport.write(out)
            self.state.stats.bytes_out += len(out)
        self._log_access()
        if self._request_done:
            self._close()
        else:
            self._close_lingering()

    def force_close(self) -> None:
        self._closed = True
        self._drop_timer()
        self.transport.abort()

    # -- helpers -------------------------------------------------------------------------------

    def _timer_fired(self, kind: int) -> None:
        if kind == _LINGER_TIMER:
            self.transport.close()
        elif self._closed:
            return
        elif kind == _KEEPALIVE_TIMER:
            self._close()
        elif kind == _BODY_TIMER and self.cycle is not None:
            # The client stopped sending a body it owes (RFC 9110 15.5.9: 408).
            timeout = self.config.timeout_request_body
            error_logger.debug("No body bytes from %s for %s s: closing.", self.client, timeout)
            self._fail_request(408)
        elif kind == _HEADER_TIMER and self.cycle is None:
            if self.conn.trailing_data[0]:
                self._request_line = None
                self._reject(408)  # part of a head arrived, too slowly
            else:
                self._close()  # an idle connection that never sent anything
