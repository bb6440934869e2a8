"""Where the two HTTP/1.1 engines deliberately answer differently (docs/server.md lists why),
seen from a real client: the fast engine is stricter than h11 in these places only."""

from __future__ import annotations

import pytest
from conftest import request, text_app


@pytest.mark.parametrize(
    "raw,h11_status,fast_status",
    [
        # RFC 9112 5.2: obs-fold may be rejected or unfolded
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n", 200, 400),
        # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, 400),
        # RFC 9112 7.1.1: chunk-ext = ";" token [ "=" ( token / quoted-string ) ]
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;=x\r\na\r\n0\r\n\r\n", 200, 400),
        # RFC 9112 3.2: asterisk-form is for OPTIONS only; a target must be in one of four forms
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 200, 400),
        (b"GET nowhere HTTP/1.1\r\nHost: a\r\n\r\n", 200, 400),
        # RFC 9112 3.2.3: CONNECT takes host:port
        (b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 200, 400),
    ],
)
def test_fast_engine_is_stricter(serve, http_engine, raw, h11_status, fast_status):
    srv = serve(text_app())
    with srv.connect() as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == (fast_status if http_engine == "fast" else h11_status)
        if resp.status == 400:
            assert resp.header(b"connection") == b"close"
            assert c.is_closed()


def test_request_line_longer_than_the_head_limit(serve, http_engine):
    srv = serve(text_app(), limit_request_head_size=1024)
    with srv.connect() as c:
        c.send(b"GET /" + b"a" * 2000)  # no line end yet: the request line alone is too long
        resp = c.read_response()
        # RFC 9112 3: a request-target longer than the server will parse gets 414 (fast);
        # h11 only knows that its buffer is full (431).
        assert resp.status == (414 if http_engine == "fast" else 431)
        assert c.is_closed()


def test_both_engines_accept_what_h11_accepts_leniently(serve):
    # Bare LF line ends (RFC 9112 2.2 MAY) and identical repeated Content-Length values
    # (RFC 9110 8.6) are accepted by both; the value reaches the app once.
    seen = []

    async def app(scope, receive, send):
        seen.append([v for n, v in scope["headers"] if n == b"content-length"])
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as c:
        c.send(b"POST / HTTP/1.1\nHost: a\nContent-Length: 2\nContent-Length: 2\n\nok")
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"ok")
        c.send(request())
        assert c.read_response().status == 200
    assert seen[0] == [b"2"]
