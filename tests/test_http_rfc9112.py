"""The MUSTs of RFC 9112 / RFC 9110 a request is held to, served: raw requests over real
sockets, on both engines, each with the clause it enforces. (The same rules at the parser,
case by case: test_http1_rules.py.)"""

from __future__ import annotations

import h11
import pytest
from conftest import Recorder, assert_refused, read_body, text_app

CHUNKED_HEAD = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "host",
    [b"user@example.com", b"a.example, b.example", b"exa mple.com", b"exa\x01mple.com", b"example.com:http", b"[::1"],
)
def test_an_invalid_host_is_400(serve, host):
    # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
    # request message ... that contains ... a Host header field with an invalid field value."
    rec = Recorder()
    srv = serve(rec)
    assert_refused(srv, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400)
    assert len(rec.scopes) == 1  # only the request that followed reached the app


def test_asterisk_form_reaches_the_app_for_options(serve):
    # RFC 9112 3.2.4: "OPTIONS * HTTP/1.1" asks about the server as a whole.
    rec = Recorder()
    srv = serve(rec)
    with srv.connect() as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
    assert (rec.scopes[0]["method"], rec.scopes[0]["path"]) == ("OPTIONS", "*")


def test_connect_is_501_and_never_reaches_the_app(serve):
    # RFC 9110 9.3.6: CONNECT asks for a tunnel, which this origin server does not make; 9.1: "An
    # origin server that receives a request method that is unrecognized or not implemented
    # SHOULD respond with the 501 (Not Implemented) status code."
    rec = Recorder()
    srv = serve(rec)
    assert_refused(srv, b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 501)
    assert len(rec.scopes) == 1  # the GET after it


def test_chunk_extensions_are_taken_and_dropped(serve):
    # RFC 9112 7.1.1: "A recipient MUST ignore unrecognized chunk extensions."
    seen = []

    async def app(scope, receive, send):
        seen.append(await read_body(receive))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app)
    with srv.connect() as c:
        c.send(CHUNKED_HEAD + b'5;sig=abc;q="x y"\r\nhello\r\n6 ; n = v\r\n world\r\n0;last\r\n\r\n')
        assert c.read_response().status == 204
    assert seen == [b"hello world"]


@pytest.mark.parametrize(
    "options,chunks",
    [
        # 20 bytes of extensions on one chunk, over --limit-chunk-extension-size
        ({"limit_chunk_extension_size": 16}, b"1;name=" + b"v" * 13 + b"\r\nx\r\n"),
        # 4 x 11 bytes over the body, over --limit-chunk-extension-total (Go CVE-2023-39326)
        ({"limit_chunk_extension_total": 40}, b"1;name=value\r\nx\r\n" * 4),
    ],
)
def test_chunk_extensions_over_their_limits_are_413(serve, options, chunks):
    # RFC 9112 7.1.1: "A server ought to limit the total length of chunk extensions received in
    # a request ... and generate an appropriate 4xx (Client Error) response if that amount is
    # exceeded."
    assert_refused(serve(text_app(), **options), CHUNKED_HEAD + chunks, 413)


def test_a_chunk_larger_than_the_body_limit_is_refused_before_its_data(serve):
    srv = serve(text_app(), limit_request_body_size=1000)
    assert_refused(srv, CHUNKED_HEAD + b"ffffffff\r\n", 413)  # 4 GiB announced; not one byte of it sent


def test_more_header_fields_than_the_limit_is_431(serve):
    srv = serve(text_app(), limit_request_fields=5)
    fields = "".join(f"X-{i}: v\r\n" for i in range(4)).encode()
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")  # Host + 4: at the limit
        assert c.read_response().status == 200
    assert_refused(srv, b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"X-4: v\r\n\r\n", 431)


def test_chunk_data_not_followed_by_crlf_is_400(serve):
    # RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF. h11 before 0.16 took
    # any two bytes there (CVE-2025-43859: request smuggling); pyproject requires 0.16.
    assert tuple(int(part) for part in h11.__version__.split(".")[:2]) >= (0, 16)
    srv = serve(text_app())
    assert_refused(srv, CHUNKED_HEAD + b"5\r\nhelloXX0\r\n\r\n", 400)


@pytest.mark.parametrize("accept", [False, True])
def test_bare_lf_line_ends_follow_accept_bare_lf(serve, accept):
    # RFC 9112 2.2: "a recipient MAY recognize a single LF as a line terminator"; refused by
    # default, as llhttp and gunicorn do, since a proxy in front may not (docs/server.md).
    srv = serve(text_app(), accept_bare_lf=accept)
    raw = b"GET / HTTP/1.1\nHost: a\n\n"
    if accept:
        with srv.connect() as c:
            c.send(raw)
            assert c.read_response().status == 200
    else:
        assert_refused(srv, raw, 400)
