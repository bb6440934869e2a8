"""The HTTP/1.1 response renderer (server/http1/writer.py), on its own: every response both
engines send is rendered by it, so its output is checked byte for byte and read back by h11
in the client role, which must accept it."""

from __future__ import annotations

import h11
import pytest

from treadle.server.http1.writer import (
    _FIELD_LINES,
    _LENGTH_FIELDS,
    _MAX_LENGTH_FIELDS,
    CONTINUE,
    ResponseLengthError,
    ResponseWriter,
    check_header,
    is_event_stream,
)


def defaults(has_date: bool, has_server: bool) -> bytes:
    return b"" if has_server else b"server: t\r\n"


def answered(
    status: int,
    headers: list,
    body: list[bytes],
    trailers: list | None = None,
    *,
    http10: bool = False,
    head: bool = False,
    te_trailers: bool = False,
    keep_alive: bool = True,
) -> tuple[bytes, ResponseWriter]:
    writer = ResponseWriter()
    writer.start(status, headers, trailers is not None, http10, head, te_trailers, keep_alive, defaults)
    out = b""
    for index, piece in enumerate(body):
        framed = writer.body(piece, index < len(body) - 1 or trailers is not None)
        out += writer.take_head() + framed
    if not body:
        framed = writer.body(b"", trailers is not None)
        out += writer.take_head() + framed
    if trailers is not None:
        out += writer.trailers(trailers, False)
    return out, writer


def client_view(wire: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes, list]:
    """Parse our bytes with h11 in the client role: the renderer's output must satisfy it."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target=b"/", headers=[("Host", "example.com")]))
    client.send(h11.EndOfMessage())
    client.receive_data(wire)
    client.receive_data(b"")
    response, body, trailers = None, b"", []
    while True:
        event = client.next_event()
        if type(event) is h11.Response:
            response = event
        elif type(event) is h11.Data:
            body += event.data
        elif type(event) is h11.EndOfMessage:
            trailers = list(event.headers)
        else:
            return response, body, trailers


def test_content_length() -> None:
    wire, writer = answered(200, [(b"Content-Length", b"5")], [b"he", b"llo"])
    assert wire == b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nserver: t\r\n\r\nhello"
    assert writer.keep_alive and writer.body_bytes == 5 and writer.status == 200
    response, body, _ = client_view(wire)
    assert response.status_code == 200 and body == b"hello"


def test_the_head_waits_for_the_first_body_bytes() -> None:
    writer = ResponseWriter()
    writer.start(200, [], False, False, False, False, True, defaults)
    assert writer.head is not None  # held: nothing given out by start()
    assert writer.body(b"abc", True) == b"3\r\nabc\r\n"  # framed: the head is taken apart
    head = writer.take_head()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert writer.take_head() == b"" and writer.head is None  # given out once
    assert writer.body(b"de", False) == b"2\r\nde\r\n0\r\n\r\n"


def test_chunked_with_trailers_when_the_client_takes_them() -> None:
    wire, _ = answered(
        200, [(b"transfer-encoding", b"gzip")], [b"abc", b"", b"de"], [(b"x-sum", b"5")], te_trailers=True
    )
    assert b"transfer-encoding: chunked\r\n" in wire and b"gzip" not in wire
    assert wire.endswith(b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n")
    _, body, trailers = client_view(wire)
    assert body == b"abcde" and trailers == [(b"x-sum", b"5")]


def test_trailers_are_dropped_for_a_client_that_did_not_ask_and_the_body_still_ends() -> None:
    wire, _ = answered(200, [], [b"abc"], [(b"x-sum", b"3")], te_trailers=False)
    assert wire.endswith(b"3\r\nabc\r\n0\r\n\r\n") and b"x-sum" not in wire


def test_http10_close_delimited_and_keep_alive() -> None:
    wire, writer = answered(200, [], [b"abc"], http10=True)
    assert b"connection: close\r\n" in wire and wire.endswith(b"\r\n\r\nabc") and not writer.keep_alive
    wire, writer = answered(200, [(b"content-length", b"1")], [b"x"], http10=True)
    assert b"connection: keep-alive\r\n" in wire and writer.keep_alive


@pytest.mark.parametrize("head, status", [(True, 200), (False, 204), (False, 304)])
def test_no_body(head: bool, status: int) -> None:
    wire, writer = answered(status, [(b"content-length", b"5")], [b"hello"], head=head)
    assert wire.endswith(b"\r\n\r\n") and b"hello" not in wire and writer.body_bytes == 0


def test_connection_is_ours() -> None:
    wire, writer = answered(200, [(b"Connection", b"close"), (b"content-length", b"0")], [])
    assert wire.count(b"onnection") == 1 and b"connection: close\r\n" in wire and not writer.keep_alive
    wire, writer = answered(200, [(b"Connection", b"keep-alive"), (b"content-length", b"0")], [], keep_alive=False)
    assert wire.count(b"onnection") == 1 and b"connection: close\r\n" in wire and not writer.keep_alive


def test_the_server_fields_defer_to_the_apps() -> None:
    wire, _ = answered(200, [(b"server", b"mine"), (b"content-length", b"0")], [])
    assert wire.count(b"server:") == 1 and b"server: mine\r\n" in wire


@pytest.mark.parametrize(
    "headers, body, error, match",
    [
        ([(b"content-length", b"2")], [b"abc"], ResponseLengthError, "longer than Content-Length by 1"),
        ([(b"content-length", b"4")], [b"abc"], ResponseLengthError, "shorter than Content-Length by 1"),
        ([(b"content-length", b"x")], [], RuntimeError, "Invalid Content-Length"),
        ([(b"content-length", b"1" * 21)], [], RuntimeError, "Invalid Content-Length"),  # 20 digits at most
        ([(b"content-length", b"1"), (b"content-length", b"2")], [], RuntimeError, "Conflicting"),
        ([(b"bad name", b"x")], [], RuntimeError, "Invalid header name"),
        ([(b"x", b"a\r\nb")], [], RuntimeError, "Invalid header value"),
        ([(b"x", b"a\x00b")], [], RuntimeError, "Invalid header value"),
        ([(b"x", "str")], [], RuntimeError, "must be bytes"),
        ([(b"x",)], [], RuntimeError, "expected a \\[name, value\\] pair"),
    ],
)
def test_invalid_responses_are_refused_before_any_byte(headers: list, body: list, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        answered(200, headers, body)


def test_a_body_too_long_is_refused_with_the_head_still_held() -> None:
    writer = ResponseWriter()
    writer.start(200, [(b"content-length", b"2")], False, False, False, False, True, defaults)
    with pytest.raises(ResponseLengthError):
        writer.body(b"abc", False)
    assert writer.head is not None  # nothing was given out: a clean 500 is still possible


def test_values_lose_surrounding_whitespace_and_valid_lines_are_cached() -> None:
    header = (b"x-cached", b" v\t")
    assert check_header(header) == (b"x-cached", b"v")
    answered(200, [header, (b"content-length", b"0")], [])
    assert _FIELD_LINES[header] == b"x-cached: v\r\n"
    assert (b"content-length", b"0") not in _FIELD_LINES  # fields the server acts on never are


def test_content_length_fields_seen_before_are_held_to_the_same_rules() -> None:
    # Kept apart with their value (writer._LENGTH_FIELDS): the second response with the same
    # fields takes them from there, and must come out, or fail, exactly as the first.
    length, other = (b"Content-Length", b" 3 "), (b"content-length", b"4")
    for _ in range(2):
        wire, writer = answered(200, [length, length], [b"abc"])
        assert wire.count(b"Content-Length: 3\r\n") == 1 and writer.framing == 0
        with pytest.raises(RuntimeError, match="Conflicting"):
            answered(200, [length, other], [b"abc"])
        with pytest.raises(ResponseLengthError, match="longer than Content-Length by 1"):
            answered(200, [length], [b"abcd"])
        with pytest.raises(RuntimeError, match="Invalid Content-Length"):
            answered(200, [(b"content-length", b"-1")], [])
    assert _LENGTH_FIELDS[length] == (b"Content-Length: 3\r\n", 3)
    assert (b"content-length", b"-1") not in _LENGTH_FIELDS
    # Bounded: an app whose every body has a new length fills it once, then is checked each time.
    for size in range(_MAX_LENGTH_FIELDS + 10):
        answered(200, [(b"content-length", b"%d" % size)], [b"x" * size])
    assert len(_LENGTH_FIELDS) == _MAX_LENGTH_FIELDS


def test_a_file_body_and_the_end_of_an_event_stream() -> None:
    writer = ResponseWriter()
    writer.start(200, [], False, False, False, False, True, defaults)
    start = writer.file_start(10)
    assert start.startswith(b"HTTP/1.1 200 OK\r\n") and start.endswith(b"\r\n\r\na\r\n")
    assert writer.file_end(10) == b"\r\n" and writer.body_bytes == 10
    assert writer.end_stream() == b"0\r\n\r\n"
    writer.start(200, [(b"content-length", b"3")], False, False, False, False, True, defaults)
    with pytest.raises(ResponseLengthError):
        writer.file_start(4)


def test_error_responses() -> None:
    writer = ResponseWriter()
    out = writer.error(413, False, b"date: x\r\n")
    assert out == (
        b"HTTP/1.1 413 Content Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 22\r\nconnection: close\r\ndate: x\r\n\r\n413 Content Too Large\n"
    )
    assert (writer.status, writer.body_bytes, writer.keep_alive) == (413, 22, False)
    assert writer.error(503, True, b"").endswith(b"\r\n\r\n")  # HEAD: no body
    assert client_view(writer.error(500, False, b""))[0].status_code == 500


def test_event_streams_are_told_by_their_content_type() -> None:
    assert is_event_stream([(b"Content-Type", b"text/event-stream; charset=utf-8")])
    assert not is_event_stream([(b"content-type", b"text/plain")])
    assert not is_event_stream([])
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"
