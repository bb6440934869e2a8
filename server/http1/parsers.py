"""The two HTTP/1.1 request parsers (``--http fast``, the default, and ``--http h11``) behind one
interface, held to the same rules, so the connection is written once against one vocabulary
and a request gets the same answer whichever engine reads it.

The interface is the fast parser's own (server/http1/fastparse): ``receive_data(bytes)``,
``next_event()`` returning ``Request`` (a complete head, with the framing facts the server
needs worked out: keep-alive, length, chunked, 100-continue, ``TE: trailers``, upgrade),
``Data``, ``EndOfMessage``, ``NEED_DATA`` or ``PAUSED``, raising ``RemoteProtocolError``
with the status to answer; ``trailing_data`` (and ``buffered``, its size); ``they_are_waiting_for_100_continue``; and
``next_request()`` once an exchange is over (True if the next request's bytes are here).

``H11Parser`` puts h11 behind it. A fresh ``h11.Connection`` is made per request: it costs
about a microsecond and allows HTTP/1.0 keep-alive, which h11's own state machine refuses.
h11 splits the bytes into a head, body pieces and trailers; what it leaves to its caller,
or takes more leniently than RFC 9112 allows, is judged by the fast engine's own code:

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

from treadle.server.http1.fastparse import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    Data,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    Request,
    ServerConnection,
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

FastParser = ServerConnection

# h11 answers any Transfer-Encoding but "chunked" with 501 before it hands over the head, where
# RFC 9112 6.3 wants 400 for most. To judge such a head by our rule (and in our order, among
# the head's other faults), it is parsed again with the field renamed to this stand-in.
_TRANSFER_ENCODING = re.compile(rb"^transfer-encoding(?=:)", re.IGNORECASE | re.MULTILINE)
_STAND_IN = b"x-transfer-encoding-refused-by-h11"


class H11Parser:
    """h11's parsing, behind the fast parser's interface and events, under its rules."""

    __slots__ = ("_conn", "_limits", "_head", "_chunked")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._conn = self._new_connection()
        self._head: list[bytes] | None = []  # the bytes received while the head is incomplete
        self._chunked = False  # the body is chunked: its end may carry trailers

    def _new_connection(self) -> h11.Connection:
        # h11's own bound on what it buffers is a backstop: the limits are applied here, as
        # the fast engine applies them (a head, a chunk-size line, the trailers).
        limits = self._limits
        longest = max(limits.head_size, grammar.MAX_CHUNK_SIZE_DIGITS + limits.chunk_extension_size + 2)
        return h11.Connection(h11.SERVER, max_incomplete_event_size=longest)

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        return self._conn.trailing_data

    @property
    def buffered(self) -> int:
        return len(self._conn.trailing_data[0])

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self._conn.they_are_waiting_for_100_continue

    def receive_data(self, data: bytes) -> None:
        head = self._head
        if head is not None and data:
            head.append(data)
        self._conn.receive_data(data)

    def next_request(self) -> bool:
        data = self._conn.trailing_data[0]
        self._conn = self._new_connection()
        if not data:
            self._head = []
            return False
        self._head = [data]
        self._conn.receive_data(data)
        return True

    def next_event(self) -> Any:
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._refused(exc) from None
        kind = type(event)
        if kind is h11.Data:
            return Data(event.data)
        if kind is h11.Request:
            return self._request(event)
        if kind is h11.EndOfMessage:
            return EndOfMessage(list(event.headers)) if self._chunked else END_OF_MESSAGE
        if event is h11.NEED_DATA:
            head = self._head
            if head is not None and sum(map(len, head)) > self._limits.head_size:
                raise head_too_large(b"".join(head), 0, self._limits.head_size)
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        return CONNECTION_CLOSED

    # -- the head ----------------------------------------------------------------------------

    def _received(self) -> bytes:
        """The bytes received for this request so far (head first), while the head is being read."""
        head = self._head
        assert head is not None
        return head[0] if len(head) == 1 else b"".join(head)

    def _request(self, event: h11.Request) -> Request:
        received = self._received()
        self._head = None
        headers = [(name, value) for name, value in event.headers]
        request = self._judged(event.method, event.target, event.http_version, headers, received)
        self._chunked = request.chunked
        if request.chunked:
            # h11 reads the chunks; every line it takes is judged on the way (_JudgedLines).
            conn = self._conn
            assert type(conn._reader) is h11._readers.ChunkedReader
            conn._reader = _JudgedChunkedReader(conn._reader, ChunkBudget(self._limits), self._limits)
        return request

    def _judged(
        self, method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]], received: bytes
    ) -> Request:
        """The fast engine's ``Request`` for the parts h11 parsed, under the fast engine's
        rules; ``received`` starts with the head's bytes as received."""
        limits = self._limits
        # (h11 holds a head to its size limit only while it is incomplete.)
        head = split_head(received, limits.bare_lf, limits.head_size)
        # Field names follow line starts: as in the fast engine, the lowercased head is searched.
        return judge_request(method, target, version, headers, b"\n" + head.lower(), limits)

    def _refused(self, exc: h11.RemoteProtocolError) -> RemoteProtocolError:
        """h11's error as the fast engine would have raised it for the same bytes."""
        status = exc.error_status_hint
        if self._head is None:  # in the body: h11's own 400s (our judges raise our errors)
            return RemoteProtocolError(str(exc), status)
        received = self._received()
        end = grammar.end_of_head(received)
        size = len(received) if end is None else end.end()
        if size > self._limits.head_size:
            return head_too_large(received, 0, self._limits.head_size)
        if status == 501 and end is not None:
            return self._transfer_encoding_refused(received[:size], exc)
        return RemoteProtocolError(str(exc), status)

    def _transfer_encoding_refused(self, head: bytes, exc: h11.RemoteProtocolError) -> RemoteProtocolError:
        """The error for a head h11 refused for its Transfer-Encoding, judged as any head:
        parsed again without the field, which is then put back for ``judge_request``."""
        renamed = _TRANSFER_ENCODING.sub(_STAND_IN, head)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=len(renamed) + 1)
        conn.receive_data(renamed)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as other:  # another fault, which h11 finds first
            return RemoteProtocolError(str(other), other.error_status_hint)
        assert type(event) is h11.Request
        headers = [(b"transfer-encoding" if name == _STAND_IN else name, value) for name, value in event.headers]
        try:
            self._judged(event.method, event.target, event.http_version, headers, head)
        except RemoteProtocolError as refused:
            return refused
        return RemoteProtocolError(str(exc), exc.error_status_hint)  # not reached: the judge refuses it too


class _JudgedChunkedReader:
    """h11's chunked reader, reading h11's buffer through ``_JudgedLines``."""

    __slots__ = ("_reader", "_lines", "read_eof")

    def __init__(self, reader: Any, chunks: ChunkBudget, limits: Limits) -> None:
        self._reader = reader
        self._lines = _JudgedLines(chunks, limits)
        self.read_eof = reader.read_eof  # h11 asks the reader what an EOF means

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


def parser_limits(config: Any) -> Limits:
    """What the server's options (a ``Config``) hold a client's requests to."""
    return Limits(
        head_size=config.limit_request_head_size,
        fields=config.limit_request_fields,
        body_size=config.limit_request_body_size,
        chunk_extension_size=config.limit_chunk_extension_size,
        chunk_extension_total=config.limit_chunk_extension_total,
        bare_lf=config.accept_bare_lf,
    )


def new_parser(engine: str, limits: Limits) -> Any:
    """The parser ``--http`` names, for one connection."""
    return FastParser(limits) if engine == "fast" else H11Parser(limits)
