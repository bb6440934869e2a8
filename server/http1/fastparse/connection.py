"""The receiving side of one HTTP/1.1 server connection, sans I/O: bytes in, events out.

The client's side of h11's server role::

    IDLE --Request--> BODY --EndOfMessage--> DONE --next_request()--> IDLE
      \\--(EOF between requests)--> CLOSED          any protocol error --> ERROR

Responses are not this object's business: the connection renders them
(server/http1/writer.py) and calls ``next_request()`` once the exchange is over. While the
client's side is DONE, ``next_event()`` returns ``PAUSED`` and leaves pipelined bytes
unparsed in the buffer (h11's flow control): the next request is not even looked at until
the current exchange is over, so a server never holds two requests of one connection.

Discussion — the buffer: received bytes are kept as one ``bytes`` plus a read position, so a
request that arrives in one ``recv`` (the common case) is parsed in place and a body that
is the whole buffer is handed out without a copy. Slicing happens once per event; the
buffer is compacted only when more bytes are appended, so consuming n pipelined requests
from one buffer is O(bytes), not O(n * bytes).
"""

from __future__ import annotations

from typing import Union

from treadle.server.http1.fastparse import grammar
from treadle.server.http1.fastparse.chunks import ChunkBudget
from treadle.server.http1.fastparse.events import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    _Sentinel,
)
from treadle.server.http1.fastparse.head import bare_lf_refused, head_too_large, parse_fields, parse_request_head
from treadle.server.http1.fastparse.limits import DEFAULT_LIMITS, Limits

Event = Union[Request, Data, EndOfMessage, ConnectionClosed, _Sentinel]

# States of either side (ints: compared on every call).
IDLE, BODY, DONE, CLOSED, ERROR = range(5)
# How the request body is being read.
_LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS = range(5)


class ServerConnection:
    """One connection's HTTP/1.1 state machine, server role.

    ``limits`` (limits.py) bounds what the client may send: ``head_size`` every piece we
    must buffer before it yields an event — the request head (431 beyond it, or 414 if the
    request line alone does not fit) and the trailer section; a chunk-size line is bounded
    by its extensions' limit (chunks.py). Unlike h11, a head that arrives whole is held to
    the limit too, so a limit does not depend on how the client's bytes were split.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.they_are_waiting_for_100_continue = False  # as h11: no body byte yet, and asked
        self.their_state = IDLE
        self._buf = b""  # unconsumed input is self._buf[self._pos:]
        self._pos = 0
        self._search = 0  # where the search for the end of a head/trailer section resumes
        self._eof = False
        self._mode = _LENGTH
        self._left = 0  # body bytes still expected (Content-Length) or left in this chunk
        self._chunks: ChunkBudget | None = None  # the chunked body's size lines, judged

    # -- input ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the client; ``b""`` means it closed its sending side."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("received data after the end of the stream")
        pos = self._pos
        if pos:
            self._buf = self._buf[pos:] + data
            self._search = max(0, self._search - pos)
            self._pos = 0
        elif self._buf:
            self._buf += data
        else:
            self._buf = data

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not yet parsed, and whether the client has closed (as h11)."""
        return self._buf[self._pos :], self._eof

    @property
    def buffered(self) -> int:
        """How many bytes received are not yet parsed (``trailing_data``'s, without a copy)."""
        return len(self._buf) - self._pos

    def next_event(self) -> Event:
        """The next event, ``NEED_DATA`` or ``PAUSED``; raises ``RemoteProtocolError``."""
        state = self.their_state
        try:
            if state == BODY:
                if self._mode == _LENGTH:
                    return self._read_length_body()
                return self._read_chunked_body()
            if state == IDLE:
                return self._read_head()
            if state == DONE:
                return PAUSED
            if state == CLOSED:
                return CONNECTION_CLOSED
        except RemoteProtocolError:
            self.their_state = ERROR
            raise
        raise RemoteProtocolError("cannot receive after a protocol error")

    def next_request(self) -> bool:
        """The exchange is over and the connection is kept alive: expect the next request
        (h11's ``start_next_cycle``, minus the response side, which is not ours to track).
        True if bytes of it are buffered already (pipelining)."""
        if self.their_state != DONE:
            raise LocalProtocolError("next_request() before the request is complete")
        self.their_state = IDLE
        self._search = self._pos
        return len(self._buf) > self._pos

    # -- the head -------------------------------------------------------------------------

    def _read_head(self) -> Event:
        buf, pos = self._buf, self._pos
        if len(buf) == pos:
            if self._eof:
                self.their_state = CLOSED
                return CONNECTION_CLOSED
            return NEED_DATA
        # RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request
        # line. h11 rejects it, as it rejects anything starting below "!" (a TLS handshake on
        # the plain port starts with 0x16): we match h11, so a stray CRLF is a 400.
        if buf[pos] < 0x21:
            raise RemoteProtocolError(f"request does not start with a method: {buf[pos : pos + 16]!r}")
        limits = self.limits
        match = grammar.end_of_head(buf, self._search)
        if match is None:
            if len(buf) - pos > limits.head_size:
                raise head_too_large(buf, pos, limits.head_size)
            if self._eof:
                raise RemoteProtocolError("client closed the connection in the middle of a request head")
            self._search = len(buf) - 2 if len(buf) - 2 > pos else pos
            return NEED_DATA
        end = match.end()
        if end - pos > limits.head_size:
            raise head_too_large(buf, pos, limits.head_size)
        if buf[end - 2] != 13 and not limits.bare_lf:  # the empty line ending the head is a bare LF
            raise bare_lf_refused()
        request = parse_request_head(buf[pos : match.start() + 1], limits)
        self._pos = self._search = end
        self.their_state = BODY
        if request.chunked:
            self._mode = _CHUNK_SIZE
            self._chunks = ChunkBudget(limits)
        else:
            self._mode = _LENGTH
            self._left = request.content_length or 0
        self.they_are_waiting_for_100_continue = request.expect_continue
        return request

    # -- the body -------------------------------------------------------------------------

    def _take(self, left: int) -> bytes:
        """Up to ``left`` buffered bytes (the caller knows at least one is there)."""
        buf, pos = self._buf, self._pos
        end = pos + left
        if end >= len(buf):
            data = buf[pos:] if pos else buf
            self._buf = b""
            self._pos = self._search = 0
        else:
            data = buf[pos:end]
            self._pos = end
        self.they_are_waiting_for_100_continue = False
        return data

    def _read_length_body(self) -> Event:
        left = self._left
        if not left:
            self._message_done()
            return END_OF_MESSAGE
        if len(self._buf) == self._pos:
            if self._eof:
                raise RemoteProtocolError(f"client closed the connection with {left} bytes of body still expected")
            return NEED_DATA
        data = self._take(left)
        self._left = left - len(data)
        return Data(data)

    def _read_chunked_body(self) -> Event:
        # RFC 9112 7.1:
        #   chunked-body = *chunk last-chunk trailer-section CRLF
        #   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        #   last-chunk   = 1*("0") [ chunk-ext ] CRLF
        while True:
            mode = self._mode
            buf, pos = self._buf, self._pos
            if mode == _CHUNK_DATA:
                if len(buf) == pos:
                    break
                data = self._take(self._left)
                self._left -= len(data)
                if not self._left:
                    self._mode = _CHUNK_CRLF
                return Data(data)
            if mode == _CHUNK_SIZE:
                chunks = self._chunks
                assert chunks is not None
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    if len(buf) - pos > chunks.max_line + 1:  # + 1: its last byte may be the CR
                        raise chunks.overlong(buf[pos:])
                    break
                size = chunks.size(buf, pos, i)
                self._pos = self._search = i + 2
                if size:
                    self._mode = _CHUNK_DATA
                    self._left = size
                else:
                    self._mode = _TRAILERS
            elif mode == _CHUNK_CRLF:
                ending = buf[pos : pos + 2]
                if ending != b"\r\n":
                    if ending == b"\r" or not ending:
                        break
                    raise RemoteProtocolError(f"chunk data not followed by CRLF: {ending!r}")
                self._pos = pos + 2
                self._mode = _CHUNK_SIZE
            else:
                return self._read_trailers(buf, pos)
        if self._eof:
            raise RemoteProtocolError("client closed the connection in the middle of a chunked body")
        return NEED_DATA

    def _read_trailers(self, buf: bytes, pos: int) -> Event:
        # RFC 9112 7.1.2: trailer-section = *( field-line CRLF ), then the final CRLF. Line
        # ends as in the head: a bare LF only with --accept-bare-lf (h11 takes it always).
        limits = self.limits
        for blank in (b"\r\n", b"\n"):
            if buf.startswith(blank, pos):
                if len(blank) == 1 and not limits.bare_lf:
                    raise bare_lf_refused()
                self._pos = self._search = pos + len(blank)
                self._message_done()
                return END_OF_MESSAGE
        match = grammar.end_of_head(buf, max(self._search, pos))
        end = len(buf) if match is None else match.end()
        if end - pos > limits.head_size:  # held to the limit whole or in pieces, as the head
            raise RemoteProtocolError(f"trailer section longer than {limits.head_size} bytes", 431)
        if match is None:
            self._search = max(pos, len(buf) - 2)
            if self._eof:
                raise RemoteProtocolError("client closed the connection in the middle of the trailers")
            return NEED_DATA
        if buf[end - 2] != 13 and not limits.bare_lf:
            raise bare_lf_refused()
        trailers = [(name.lower(), value) for name, value in parse_fields(buf[pos : match.start() + 1], limits.bare_lf)]
        self._pos = self._search = end
        self._message_done()
        return EndOfMessage(trailers)

    def _message_done(self) -> None:
        self.their_state = DONE
        self._chunks = None
        self.they_are_waiting_for_100_continue = False  # the whole body is here; nobody waits
