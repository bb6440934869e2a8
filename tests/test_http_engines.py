"""The two HTTP/1.1 engines answer alike, seen from a real client, where the h11 library alone
would not: the h11 engine holds h11 to the fast engine's rules (server/http1/h11parser.py), so
``--http`` changes the speed, never the answer (docs/server.md)."""

from __future__ import annotations

import pytest
from conftest import assert_refused, request, text_app


@pytest.mark.parametrize(
    "raw,status",
    [
        # RFC 9112 5.2: obs-fold may be rejected or unfolded (h11 unfolds)
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", 400),
        # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing (h11 reads it as chunked)
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        # RFC 9112 6.3 (4): Transfer-Encoding not ending in chunked is a 400 (h11: 501)
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", 400),
        # RFC 9112 7.1.1: chunk-ext = ";" token [ "=" ( token / quoted-string ) ] (h11 takes ";" + anything)
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;=x\r\na\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n", 400),
        # RFC 9112 3.2: asterisk-form is for OPTIONS only; a target must be in one of four forms
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET nowhere HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        # RFC 9112 3.2.3: CONNECT takes host:port
        (b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        # RFC 9112 3.2: an invalid Host value (h11 takes any field value)
        (b"GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400),
        # RFC 9112 2.2: a bare LF line end, refused unless --accept-bare-lf (h11 takes it)
        (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ],
)
def test_both_engines_refuse_what_h11_alone_takes(serve, raw, status):
    assert_refused(serve(text_app()), raw, status)


def test_request_line_longer_than_the_head_limit_is_414(serve):
    srv = serve(text_app(), limit_request_head_size=1024)
    with srv.connect() as c:
        c.send(b"GET /" + b"a" * 2000)  # no line end yet: the request line alone is too long
        # RFC 9112 3: a request-target longer than the server will parse gets 414 (h11 alone
        # knows only that its buffer is full: 431).
        assert c.read_response().status == 414
        assert c.is_closed()


def test_bare_lf_and_repeated_content_length_with_accept_bare_lf(serve):
    # --accept-bare-lf takes bare LF line ends (RFC 9112 2.2 MAY), as h11 does; identical
    # repeated Content-Length values (RFC 9110 8.6) are taken anyway. The value reaches the app once.
    seen = []

    async def app(scope, receive, send):
        seen.append([v for n, v in scope["headers"] if n == b"content-length"])
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    srv = serve(app, accept_bare_lf=True)
    with srv.connect() as c:
        c.send(b"POST / HTTP/1.1\nHost: a\nContent-Length: 2\nContent-Length: 2\n\nok")
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"ok")
        c.send(request())
        assert c.read_response().status == 200
    assert seen[0] == [b"2"]
