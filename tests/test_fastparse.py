"""Direct tests of the fast engine (server/http1/fastparse): one per RFC 9112 rule it enforces,
with the status a server should answer, plus the cycle, flow control and the writer."""

from __future__ import annotations

import pytest

from treadle.server.http1.fastparse import (
    DONE,
    ERROR,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    RemoteProtocolError,
    Request,
    ServerConnection,
)

HOST = b"Host: example.com\r\n"


def events(raw: bytes, conn: ServerConnection | None = None, eof: bool = False) -> list:
    conn = conn or ServerConnection()
    conn.receive_data(raw)
    if eof:
        conn.receive_data(b"")
    out = []
    while True:
        event = conn.next_event()
        out.append(event)
        if event is NEED_DATA or event is PAUSED or type(event) is ConnectionClosed:
            return out


def rejected(raw: bytes, max_head_size: int = 16384) -> RemoteProtocolError:
    conn = ServerConnection(max_head_size)
    with pytest.raises(RemoteProtocolError) as info:
        events(raw, conn, eof=True)
    assert conn.their_state == ERROR
    with pytest.raises(RemoteProtocolError, match="after a protocol error"):
        conn.next_event()
    return info.value


@pytest.mark.parametrize(
    "raw,status,message",
    [
        # RFC 9112 6.3 (5) / RFC 9110 8.6: Content-Length
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "conflicting"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1,2\r\n\r\n", 400, "conflicting"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1e3\r\n\r\n", 400, "invalid Content-Length"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: " + b"9" * 21 + b"\r\n\r\n", 400, "invalid Content"),
        # RFC 9112 6.1 / 6.3 (4): Transfer-Encoding
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 400, "does not end in chunked"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400, "does not end in chunked"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "invalid Transfer"),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both"),
        # RFC 9112 5.1, 5.2 and RFC 9110 5.5: field lines
        (b"GET / HTTP/1.1\r\n" + HOST + b"X-A : b\r\n\r\n", 400, "whitespace between field name and colon"),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\n  b\r\n\r\n", 400, "obs-fold"),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\n\tb\r\n\r\n", 400, "obs-fold"),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X(A): b\r\n\r\n", 400, "invalid character in field name"),
        (b"GET / HTTP/1.1\r\n" + HOST + b": b\r\n\r\n", 400, "invalid character in field name"),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X-A b\r\n\r\n", 400, "no colon"),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", 400, "NUL, CR, LF"),
        (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n", 400, "NUL, CR, LF"),
        # RFC 9112 3.2: Host
        (b"GET / HTTP/1.1\r\n\r\n", 400, "missing Host"),
        (b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n", 400, "more than one Host"),
        (b"GET / HTTP/1.0\r\n" + HOST + HOST + b"\r\n", 400, "more than one Host"),
        # RFC 9112 3 and 2.3: the request line
        (b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "invalid character in method"),
        (b"GET /a\x7f HTTP/1.1\r\n" + HOST + b"\r\n", 400, "invalid character in request-target"),
        (b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n", 400, "is not 'method SP"),
        (b"GET / HTTP/x\r\n" + HOST + b"\r\n", 400, "invalid HTTP version"),
        (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505, "unsupported HTTP version 2.0"),
        (b"\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "does not start with a method"),
        (b"\x16\x03\x01\x02\x00\x01", 400, "does not start with a method"),  # TLS on the plain port
        # RFC 9112 3.2: request-target forms
        (b"GET * HTTP/1.1\r\n" + HOST + b"\r\n", 400, "asterisk-form"),
        (b"GET example.com:80 HTTP/1.1\r\n" + HOST + b"\r\n", 400, "none of the forms"),
        (b"CONNECT /x HTTP/1.1\r\n" + HOST + b"\r\n", 400, "authority-form"),
        # RFC 9112 7.1: chunked framing
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nz\r\n", 400, "invalid chunk size"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400, "invalid chunk size"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1;a=\r\n", 400, "invalid chunk size"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1;\x00\r\n", 400, "invalid chunk size"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1\r\naX", 400, "not followed by CRLF"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\n", 400, "not followed by CRLF"),
        # Truncation: the client closed mid-message
        (b"GET / HTTP/1.1\r\nHo", 400, "middle of a request head"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nab", 400, "3 bytes of body still expected"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", 400, "chunked body"),
        (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", 400, "trailers"),
    ],
)
def test_rejections(raw: bytes, status: int, message: str) -> None:
    error = rejected(raw)
    assert error.status == status and error.error_status_hint == status
    assert message in str(error)


def test_head_limit_applies_to_whole_and_split_heads_alike() -> None:
    raw = b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 200 + b"\r\n\r\n"
    assert rejected(raw, max_head_size=128).status == 431  # arrived whole (h11 lets this through)
    conn = ServerConnection(128)
    with pytest.raises(RemoteProtocolError, match="longer than 128") as info:
        for i in range(len(raw)):
            conn.receive_data(raw[i : i + 1])
            conn.next_event()
    assert info.value.status == 431
    assert type(events(raw, ServerConnection(len(raw)))[0]) is Request  # exactly at the limit


def test_overlong_request_line_is_414() -> None:
    assert rejected(b"GET /" + b"a" * 300, max_head_size=128).status == 414
    assert rejected(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", max_head_size=128).status == 414


def test_chunk_line_and_trailers_are_bounded() -> None:
    head = b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    assert rejected(head + b"1;" + b"a" * 200, max_head_size=128).status == 431
    assert rejected(head + b"0\r\nX: " + b"a" * 200, max_head_size=128).status == 431


def test_request_fields() -> None:
    raw = b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nx-multi:  b c \r\nCookie: \x01\xe9\r\n\r\n"
    request, end, paused = events(raw)
    assert (request.method, request.target, request.http_version) == (b"GET", b"/p?q=1", b"1.1")
    assert request.headers == [(b"host", b"h"), (b"x-multi", b"a"), (b"x-multi", b"b c"), (b"cookie", b"\x01\xe9")]
    assert request.keep_alive and request.content_length is None and not request.chunked
    assert type(end) is EndOfMessage and end.trailers == [] and paused is PAUSED


def test_bare_lf_is_a_line_end_in_the_head_as_h11() -> None:
    request = events(b"GET / HTTP/1.1\nHost: h\r\nX: y\n\n")[0]
    assert request.headers == [(b"host", b"h"), (b"x", b"y")]


@pytest.mark.parametrize(
    "version,connection,keep_alive",
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Keep-Alive, CLOSE", False),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Upgrade, Keep-Alive", True),
        (b"1.2", None, True),  # a higher minor version is treated as 1.1
    ],
)
def test_keep_alive_rules(version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    raw = b"GET / HTTP/" + version + b"\r\n" + HOST
    if connection is not None:
        raw += b"Connection: " + connection + b"\r\n"
    assert events(raw + b"\r\n")[0].keep_alive is keep_alive


def test_pipelined_requests_wait_for_the_cycle() -> None:
    one = b"POST /1 HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc"
    two = b"GET /2 HTTP/1.1\r\n" + HOST + b"\r\n"
    conn = ServerConnection()
    request, data, end, paused = events(one + two, conn)
    assert request.target == b"/1" and data.data == b"abc" and paused is PAUSED
    assert conn.next_event() is PAUSED  # not parsed until the response is done
    assert conn.trailing_data == (two, False)
    conn.next_request()  # the exchange is over: the server has answered
    assert conn.next_event().target == b"/2"
    with pytest.raises(LocalProtocolError):
        conn.next_request()  # the request is not complete yet


def test_chunked_body_and_trailers_in_any_split() -> None:
    raw = b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    raw += b"5;name=\"quoted \\\" value\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Check: 1\r\nx-more: 2\r\n\r\n"
    for step in (1, 2, 3, 7, len(raw)):
        conn = ServerConnection()
        body, trailers = b"", None
        for i in range(0, len(raw), step):
            conn.receive_data(raw[i : i + step])
            while (event := conn.next_event()) not in (NEED_DATA, PAUSED):
                if type(event) is Data:
                    body += event.data
                elif type(event) is EndOfMessage:
                    trailers = event.trailers
        assert body == b"hello world" and trailers == [(b"x-check", b"1"), (b"x-more", b"2")]
        assert conn.their_state == DONE


def test_eof_between_requests_is_connection_closed() -> None:
    conn = ServerConnection()
    assert events(b"", conn, eof=True) == [ConnectionClosed()] or type(conn.next_event()) is ConnectionClosed
    assert type(conn.next_event()) is ConnectionClosed
    with pytest.raises(RuntimeError):
        conn.receive_data(b"GET")


def test_expect_100_continue() -> None:
    raw = b"POST / HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    conn = ServerConnection()
    request, need = events(raw, conn)
    assert request.expect_continue and conn.they_are_waiting_for_100_continue and need is NEED_DATA
    assert [type(e) for e in events(b"o", conn)] == [Data, type(NEED_DATA)]
    assert not conn.they_are_waiting_for_100_continue  # the client sent body without waiting
    assert [type(e) for e in events(b"k", conn)] == [Data, EndOfMessage, type(PAUSED)]
    # RFC 9110 10.1.1: ignored in HTTP/1.0
    assert not events(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")[0].expect_continue
