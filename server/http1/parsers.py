"""The two HTTP/1.1 request parsers (``--http fast``, the default, and ``--http h11``) behind one
interface, so the connection is written once against one vocabulary.

The interface is the fast parser's own (server/http1/fastparse): ``receive_data(bytes)``,
``next_event()`` returning ``Request`` (a complete head, with the framing facts the server
needs worked out: keep-alive, length, chunked, 100-continue, ``TE: trailers``, upgrade),
``Data``, ``EndOfMessage``, ``NEED_DATA`` or ``PAUSED``, raising ``RemoteProtocolError``
with the status to answer; ``trailing_data``; ``they_are_waiting_for_100_continue``; and
``next_request()`` once an exchange is over (True if the next request's bytes are here).

``H11Parser`` puts h11 behind it. A fresh ``h11.Connection`` is made per request: it costs
about a microsecond and allows HTTP/1.0 keep-alive, which h11's own state machine refuses.
What h11 leaves to its caller is done here, as the fast parser does it: the version rule,
keep-alive, the framing facts, refusing Content-Length with Transfer-Encoding, and the head
size limit, measured the same way (the head's bytes on the wire, CRLFs included).
"""

from __future__ import annotations

from typing import Any

import h11

from treadle.server.http1.fastparse import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    Data,
    RemoteProtocolError,
    Request,
    ServerConnection,
)

FastParser = ServerConnection


class H11Parser:
    """h11's parsing, behind the fast parser's interface and events."""

    __slots__ = ("_conn", "_limit", "_fed")

    def __init__(self, max_head_size: int) -> None:
        self._limit = max_head_size
        self._conn = self._new_connection()
        self._fed = 0  # bytes given to this request's h11.Connection (to measure its head)

    def _new_connection(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._limit)

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        return self._conn.trailing_data

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self._conn.they_are_waiting_for_100_continue

    def receive_data(self, data: bytes) -> None:
        self._fed += len(data)
        self._conn.receive_data(data)

    def next_request(self) -> bool:
        data = self._conn.trailing_data[0]
        self._conn = self._new_connection()
        self._fed = len(data)
        if not data:
            return False
        self._conn.receive_data(data)
        return True

    def next_event(self) -> Any:
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise RemoteProtocolError(str(exc), exc.error_status_hint) from None
        kind = type(event)
        if kind is h11.Data:
            return Data(event.data)
        if kind is h11.Request:
            return self._request(event)
        if kind is h11.EndOfMessage:
            return END_OF_MESSAGE
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        return CONNECTION_CLOSED

    def _request(self, event: h11.Request) -> Request:
        """The fast parser's ``Request`` for h11's, facts and all; RemoteProtocolError for
        what the fast parser refuses at this point too."""
        # h11 holds a head to its size limit only while it arrives in pieces; a whole one is
        # measured here, as what h11 consumed of the bytes fed for this request.
        head_size = self._fed - len(self._conn.trailing_data[0])
        if head_size > self._limit:
            raise RemoteProtocolError(f"request head longer than {self._limit} bytes", 431)
        http_version = event.http_version
        if http_version != b"1.1" and http_version != b"1.0":
            if http_version[:2] != b"1.":
                # RFC 9112 2.3: another major version is not ours to answer.
                raise RemoteProtocolError(f"unsupported HTTP version {http_version!r}", 505)
            http_version = b"1.1"  # a higher 1.x minor version is answered as 1.1
        http10 = http_version == b"1.0"
        headers = [(name, value) for name, value in event.headers]
        keep_alive = not http10
        content_length = None
        chunked = te_trailers = False
        upgrade = None
        for name, value in headers:
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
        if chunked and content_length is not None:
            # RFC 9112 6.1: both framings at once is a request-smuggling vector; h11 would
            # follow Transfer-Encoding, we refuse (and, as required, close).
            raise RemoteProtocolError("both Content-Length and Transfer-Encoding", 400)
        expect_continue = self._conn.they_are_waiting_for_100_continue
        return Request(
            event.method,
            event.target,
            http_version,
            headers,
            keep_alive,
            content_length,
            chunked,
            expect_continue,
            te_trailers,
            upgrade,
        )


def new_parser(engine: str, max_head_size: int) -> Any:
    """The parser ``--http`` names, for one connection."""
    return FastParser(max_head_size) if engine == "fast" else H11Parser(max_head_size)
