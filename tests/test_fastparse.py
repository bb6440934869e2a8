"""Direct tests of the parsers' interface (server/http1/parsers.py), on both engines — the fast
parser (server/http1/fastparse) and h11's readers behind it: the cycle, the events, flow
control, EOF. The rules they enforce, with the status a server should answer, are tested in
test_http1_rules.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from treadle.server.http1.fastparse import (
    DEFAULT_LIMITS,
    DONE,
    ERROR,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    RemoteProtocolError,
    ServerConnection,
)
from treadle.server.http1.parsers import new_parser

HOST = b"Host: example.com\r\n"


@pytest.fixture(params=["fast", "h11"])
def new(request: pytest.FixtureRequest) -> Callable[[], ServerConnection]:
    """A maker of fresh parsers of one engine (``new_parser``, as the server makes them)."""
    return lambda: new_parser(request.param, DEFAULT_LIMITS)


def events(raw: bytes, conn: ServerConnection, eof: bool = False) -> list:
    conn.receive_data(raw)
    if eof:
        conn.receive_data(b"")
    out = []
    while True:
        event = conn.next_event()
        out.append(event)
        if event is NEED_DATA or event is PAUSED or type(event) is ConnectionClosed:
            return out


def rejected(conn: ServerConnection, raw: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        events(raw, conn, eof=True)
    assert conn.their_state == ERROR
    with pytest.raises(RemoteProtocolError, match="after a protocol error"):
        conn.next_event()
    return info.value


def test_a_refusal_leaves_the_parser_in_error(new) -> None:
    error = rejected(new(), b"GET / HTTP/1.1\r\n\r\n")  # (every rule, on both engines: test_http1_rules.py)
    assert (error.status, error.error_status_hint) == (400, 400)


def test_request_fields(new) -> None:
    raw = b"GET /p?q=1 HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nx-multi:  b c \r\nCookie: \x01\xe9\r\n\r\n"
    request, end, paused = events(raw, new())
    assert (request.method, request.target, request.http_version) == (b"GET", b"/p?q=1", b"1.1")
    assert request.headers == [(b"host", b"h"), (b"x-multi", b"a"), (b"x-multi", b"b c"), (b"cookie", b"\x01\xe9")]
    assert request.keep_alive and request.content_length is None and not request.chunked
    assert type(end) is EndOfMessage and end.trailers == [] and paused is PAUSED


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
def test_keep_alive_rules(new, version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    raw = b"GET / HTTP/" + version + b"\r\n" + HOST
    if connection is not None:
        raw += b"Connection: " + connection + b"\r\n"
    assert events(raw + b"\r\n", new())[0].keep_alive is keep_alive


def test_pipelined_requests_wait_for_the_cycle(new) -> None:
    one = b"POST /1 HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc"
    two = b"GET /2 HTTP/1.1\r\n" + HOST + b"\r\n"
    conn = new()
    request, data, end, paused = events(one + two, conn)
    assert request.target == b"/1" and data.data == b"abc" and paused is PAUSED
    assert conn.next_event() is PAUSED  # not parsed until the response is done
    assert conn.trailing_data == (two, False)
    conn.next_request()  # the exchange is over: the server has answered
    assert conn.next_event().target == b"/2"
    with pytest.raises(LocalProtocolError):
        conn.next_request()  # the request is not complete yet


def test_chunked_body_and_trailers_in_any_split(new) -> None:
    raw = b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
    raw += b"5;name=\"quoted \\\" value\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Check: 1\r\nx-more: 2\r\n\r\n"
    for step in (1, 2, 3, 7, len(raw)):
        conn = new()
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


def test_eof_between_requests_is_connection_closed(new) -> None:
    conn = new()
    assert events(b"", conn, eof=True) == [ConnectionClosed()] or type(conn.next_event()) is ConnectionClosed
    assert type(conn.next_event()) is ConnectionClosed
    with pytest.raises(RuntimeError):
        conn.receive_data(b"GET")


def test_expect_100_continue(new) -> None:
    raw = b"POST / HTTP/1.1\r\n" + HOST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    conn = new()
    request, need = events(raw, conn)
    assert request.expect_continue and conn.they_are_waiting_for_100_continue and need is NEED_DATA
    assert [type(e) for e in events(b"o", conn)] == [Data, type(NEED_DATA)]
    assert not conn.they_are_waiting_for_100_continue  # the client sent body without waiting
    assert [type(e) for e in events(b"k", conn)] == [Data, EndOfMessage, type(PAUSED)]
    # RFC 9110 10.1.1: ignored in HTTP/1.0
    assert not events(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", new())[0].expect_continue


def test_the_fast_engine_does_not_load_the_h11_engine() -> None:
    # The h11 engine reads h11's private modules (server/http1/h11parser.py), which a later
    # h11 may change: the server and its default engine must not depend on them.
    code = (
        "import sys, treadle.server.main, treadle.server.http1.connection;"
        "from treadle.server.http1.parsers import new_parser;"
        "from treadle.server.http1.fastparse import DEFAULT_LIMITS;"
        "new_parser('fast', DEFAULT_LIMITS);"
        "print('treadle.server.http1.h11parser' in sys.modules)"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
