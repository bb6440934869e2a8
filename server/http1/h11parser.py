"""The ``--http h11`` engine's parser: h11's parsing behind the fast parser's interface and
events (server/http1/parsers.py), under the fast engine's rules.

h11's receive buffer splits the bytes into lines, and its readers (the functions
``h11.Connection`` calls for each state) turn a head into an ``h11.Request`` — request line
and field syntax, Content-Length, the Host count — and a body into pieces and trailers.
What ``h11.Connection`` adds on top of its readers is left out, because the server does it
already, once, for both engines: the request/response state machine (the connection keeps
its own, server/http1/connection.py; HTTP/1.0 keep-alive, which h11's refuses, would need a
fresh ``Connection`` per request, and that costs about as much as the parsing itself:
docs/performance.md), keep-alive, the body's framing and 100-continue (``judge_request``
works them out), the limit on what is buffered (the limits below). These are h11's private
modules (``h11._readers``, ``h11._receivebuffer``; judging chunk-size lines needs its
chunked reader's buffer interface anyway), so this module is imported only when the engine
is asked for, and the differential tests (tests/test_fastparse_differential.py) prove it
against the fast engine, and the fast engine against ``h11.Connection`` itself.

What h11 leaves to its caller, or takes more leniently than RFC 9112 allows, is judged by
the fast engine's own code:

- the head: h11 parses it, then ``judge_request`` (fastparse/head.py) applies every rule
  after the line syntax — Host, version, field count, target forms, Transfer-Encoding,
  framing — exactly as for the fast engine; ``split_head`` refuses the bare LF (unless
  ``--accept-bare-lf``) and the obs-fold h11 takes, and measures the head on the wire;
- chunk-size lines and trailers: h11's chunked reader gets its buffer through a view that
  hands every chunk-size line to ``ChunkBudget`` (fastparse/chunks.py: grammar, extension
  and body limits) and checks the trailer section's size and line ends (``_JudgedLines``).
"""

from __future__ import annotations

import re
from typing import Any

import h11
from h11._readers import ChunkedReader, ContentLengthReader
from h11._readers import maybe_read_from_IDLE_client as read_request_head
from h11._receivebuffer import ReceiveBuffer

from treadle.server.http1.fastparse import (
    BODY,
    CLOSED,
    CONNECTION_CLOSED,
    DONE,
    END_OF_MESSAGE,
    ERROR,
    IDLE,
    NEED_DATA,
    PAUSED,
    Data,
    EndOfMessage,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    grammar,
)
from treadle.server.http1.fastparse.chunks import ChunkBudget
from treadle.server.http1.fastparse.head import (
    OBS_FOLD,
    bare_lf_refused,
    head_too_large,
    judge_request,
    split_head,
)

# h11 answers any Transfer-Encoding but "chunked" with 501 before it hands over the head, where
# RFC 9112 6.3 wants 400 for most. To judge such a head by our rule (and in our order, among
# the head's other faults), it is parsed again with the field renamed to this stand-in.
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding(?=:)", re.IGNORECASE | re.MULTILINE)
_STAND_IN = b"x-transfer-encoding-refused-by-h11"


class H11Parser:
    """h11's parsing, behind the fast parser's interface and events, under its rules.

    The client's side, as the fast parser's (fastparse/connection.py)::

        IDLE --Request--> BODY --EndOfMessage--> DONE --next_request()--> IDLE
          \\--(EOF between requests)--> CLOSED          any protocol error --> ERROR
    """

    __slots__ = ("_buf", "_eof", "their_state", "_reader", "_limits", "_head", "they_are_waiting_for_100_continue")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._buf = ReceiveBuffer()  # h11's: what is received and not yet parsed
        self._eof = False  # the client has closed its sending side
        self.their_state = IDLE
        self._reader: Any = None  # h11's reader of the body (BODY only)
        self._head: list[bytes] | None = []  # the bytes received while the head is incomplete
        self.they_are_waiting_for_100_continue = False  # as h11: no body byte yet, and asked

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not yet parsed, and whether the client has closed (as h11)."""
        return bytes(self._buf), self._eof

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the client; ``b""`` means it closed its sending side."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("received data after the end of the stream")
        head = self._head
        if head is not None:
            head.append(data)
        self._buf += data

    def next_request(self) -> bool:
        """The exchange is over and the connection is kept alive: expect the next request.
        True if bytes of it are buffered already (pipelining)."""
        if self.their_state != DONE:
            raise LocalProtocolError("next_request() before the request is complete")
        self.their_state = IDLE
        buf = self._buf
        if not buf:
            self._head = []
            return False
        self._head = [bytes(buf)]
        return True

    def next_event(self) -> Any:
        """The next event, ``NEED_DATA`` or ``PAUSED``; raises ``RemoteProtocolError``."""
        state = self.their_state
        try:
            if state == BODY:
                return self._read_body()
            if state == IDLE:
                return self._read_head()
        except RemoteProtocolError:
            self.their_state = ERROR
            raise
        if state == DONE:
            return PAUSED  # the next request waits for next_request()
        if state == CLOSED:
            return CONNECTION_CLOSED
        raise RemoteProtocolError("cannot receive after a protocol error")

    # -- the head ----------------------------------------------------------------------------

    def _read_head(self) -> Any:
        buf = self._buf
        try:
            event = read_request_head(buf)
        except h11.ProtocolError as exc:
            raise self._refused(exc) from None
        if event is None:
            if len(buf) > self._limits.head_size:
                raise head_too_large(self._received(), 0, self._limits.head_size)
            if self._eof:
                if not buf:
                    self.their_state = CLOSED
                    return CONNECTION_CLOSED
                raise RemoteProtocolError("client closed the connection in the middle of a request head")
            return NEED_DATA
        received = self._received()
        self._head = None
        request = self._judged(event, _fields(event), received)
        self.their_state = BODY
        if request.chunked:
            # h11 reads the chunks; every line it takes is judged on the way (_JudgedLines).
            self._reader = _JudgedChunkedReader(ChunkBudget(self._limits), self._limits)
        elif request.content_length:
            self._reader = ContentLengthReader(request.content_length)
        else:
            # No body to read: Content-Length 0, or, RFC 9112 6.3 (7): "If this is a request
            # message and none of the above are true, then the message body length is zero".
            self._reader = None
        self.they_are_waiting_for_100_continue = request.expect_continue
        return request

    def _received(self) -> bytes:
        """The bytes received for this request so far (head first), while the head is being read."""
        head = self._head
        assert head is not None
        return head[0] if len(head) == 1 else b"".join(head)

    def _judged(self, event: h11.Request, headers: list[tuple[bytes, bytes]], received: bytes) -> Request:
        """The fast engine's ``Request`` for a head h11 parsed (``headers``: its fields,
        names lowercased), under the fast engine's rules; ``received`` starts with the
        head's bytes as received."""
        limits = self._limits
        # (h11 holds a head to no size: the limit is applied here, as the fast engine does.)
        head = split_head(received, limits.bare_lf, limits.head_size)
        # Field names follow line starts: as in the fast engine, the lowercased head is searched.
        return judge_request(event.method, event.target, event.http_version, headers, b"\n" + head.lower(), limits)

    def _refused(self, exc: h11.ProtocolError) -> RemoteProtocolError:
        """h11's error for a head, as the fast engine would have raised it for the same bytes."""
        received = self._received()
        end = grammar.end_of_head(received)
        size = len(received) if end is None else end.end()
        if size > self._limits.head_size:
            return head_too_large(received, 0, self._limits.head_size)
        if exc.error_status_hint == 501 and end is not None:
            return self._transfer_encoding_refused(received[:size], exc)
        return RemoteProtocolError(str(exc), exc.error_status_hint)

    def _transfer_encoding_refused(self, head: bytes, exc: h11.ProtocolError) -> RemoteProtocolError:
        """The error for a head h11 refused for its Transfer-Encoding, judged as any head:
        parsed again without the field, which is then put back for ``judge_request``."""
        buf = ReceiveBuffer()
        buf += _TRANSFER_ENCODING.sub(_STAND_IN, head)
        try:
            event = read_request_head(buf)
        except h11.ProtocolError as other:  # another fault, which h11 finds first
            return RemoteProtocolError(str(other), other.error_status_hint)
        assert event is not None
        headers = [(b"transfer-encoding" if name == _STAND_IN else name, value) for name, value in _fields(event)]
        try:
            self._judged(event, headers, head)
        except RemoteProtocolError as refused:
            return refused
        return RemoteProtocolError(str(exc), exc.error_status_hint)  # not reached: the judge refuses it too

    # -- the body ----------------------------------------------------------------------------

    def _read_body(self) -> Any:
        reader = self._reader
        if reader is None:
            return self._message_done(END_OF_MESSAGE)
        buf = self._buf
        try:
            event = reader(buf)
            if event is None and self._eof:
                if buf:
                    raise RemoteProtocolError("client closed the connection in the middle of the body")
                reader.read_eof()  # raises: the body is incomplete
        except h11.ProtocolError as exc:
            raise RemoteProtocolError(str(exc), exc.error_status_hint) from None
        if event is None:
            return NEED_DATA
        self.they_are_waiting_for_100_continue = False
        if type(event) is h11.Data:
            return Data(event.data)
        return self._message_done(EndOfMessage(_fields(event)) if event.headers else END_OF_MESSAGE)

    def _message_done(self, event: Any) -> Any:
        self.their_state = DONE
        self._reader = None
        self.they_are_waiting_for_100_continue = False  # the whole body is here; nobody waits
        return event


def _fields(event: h11.Request | h11.EndOfMessage) -> list[tuple[bytes, bytes]]:
    """The fields (of a head, or trailers) as h11 parsed them, names lowercased: from the list its
    ``Headers`` keeps, as h11's own helpers do (iterating the ``Headers`` sequence costs a
    generator, a call per field and an ``IndexError`` at the end)."""
    return [(name, value) for _, name, value in event.headers._full_items]


class _JudgedChunkedReader:
    """h11's chunked reader, reading h11's buffer through ``_JudgedLines``."""

    __slots__ = ("_reader", "_lines", "read_eof")

    def __init__(self, chunks: ChunkBudget, limits: Limits) -> None:
        self._reader = reader = ChunkedReader()
        self._lines = _JudgedLines(chunks, limits)
        self.read_eof = reader.read_eof  # what an EOF means in a chunked body (an error)

    def __call__(self, buf: Any) -> Any:
        lines = self._lines
        lines.buf = buf
        return self._reader(lines)


class _JudgedLines:
    """h11's receive buffer, as its chunked reader uses it, with every line it takes judged:
    a chunk-size line by ``ChunkBudget`` (h11 gets the size alone, its extensions judged and
    dropped, as h11 drops them), the trailer section held to the head's size and line ends."""

    __slots__ = ("buf", "_chunks", "_limits")

    def __init__(self, chunks: ChunkBudget, limits: Limits) -> None:
        self.buf: Any = None
        self._chunks = chunks
        self._limits = limits

    def maybe_extract_at_most(self, count: int) -> Any:
        return self.buf.maybe_extract_at_most(count)

    def maybe_extract_next_line(self) -> bytes | None:
        buf, chunks = self.buf, self._chunks
        line = buf.maybe_extract_next_line()
        if line is None:
            if len(buf) > chunks.max_line + 1:  # no CRLF in it: all of the buffer is the line
                raise chunks.overlong(bytes(buf))
            return None
        return b"%x\r\n" % chunks.size(line, 0, len(line) - 2)

    def maybe_extract_lines(self) -> list[bytearray] | None:
        buf, limits = self.buf, self._limits
        before = len(buf)
        lines = buf.maybe_extract_lines()
        taken = before - len(buf)
        if (before if lines is None else taken) > limits.head_size:
            raise RemoteProtocolError(f"trailer section longer than {limits.head_size} bytes", 431)
        if lines is None:
            return None
        # h11 has dropped the line ends: had each been CRLF, it took two bytes per line more.
        if not limits.bare_lf and taken != sum(map(len, lines)) + 2 * len(lines) + 2:
            raise bare_lf_refused()
        if any(line[:1] in (b" ", b"\t") for line in lines):
            raise RemoteProtocolError(OBS_FOLD)
        return lines
