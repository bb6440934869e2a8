"""Malformed requests, failing apps and invalid ASGI messages: each gets the right answer,
is logged, leaks no traceback, and leaves the server serving others."""

from __future__ import annotations

import logging

import pytest
from conftest import assert_refused, request, text_app, wait_until


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 without Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        # RFC 9112 6.3 (4): Transfer-Encoding not ending in chunked "MUST respond with the 400
        # (Bad Request)" (h11 itself answers 501; the h11 engine answers 400 too).
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ],
)
def test_malformed_request_is_4xx_with_close(serve, raw, status):
    assert_refused(serve(text_app()), raw, status)


def test_bad_chunked_body_is_400(serve):
    async def app(scope, receive, send):
        while (await receive())["type"] == "http.request":
            pass

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Transfer-Encoding", "chunked")]) + b"zz\r\nnope\r\n")
        resp = c.read_response()
        assert resp.status == 400
        assert c.is_closed()


def test_head_too_large_is_431(serve):
    srv = serve(text_app(), limit_request_head_size=4096)
    with srv.connect() as c:
        c.send(request(headers=[("X-Big", "a" * 5000)]))
        resp = c.read_response()
        assert resp.status == 431
        assert c.is_closed()
    with srv.connect() as c:
        c.send(request(headers=[("X-Ok", "a" * 3000)]))
        assert c.read_response().status == 200


def test_app_raises_before_response_is_500(serve, caplog):
    async def app(scope, receive, send):
        raise ValueError("secret detail")

    srv = serve(app)
    with caplog.at_level(logging.ERROR, logger="treadle.error"):
        with srv.connect() as c:
            c.send(request())
            resp = c.read_response()
            assert resp.status == 500
            assert b"secret" not in resp.body and b"Traceback" not in resp.body
        wait_until(lambda: any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records))


def test_app_raises_after_response_started_closes(serve, caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom")

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        status, _, headers, _ = c.read_head()
        assert status == 200
        rest = c.read_until_close()
        assert rest == b"7\r\npartial\r\n"  # no terminating chunk: the client sees truncation
    wait_until(lambda: any("Exception in ASGI application" in r.getMessage() for r in caplog.records))


def test_app_returns_without_response_is_500(serve, caplog):
    async def app(scope, receive, send):
        return None

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 500
    wait_until(lambda: any("without starting response" in r.getMessage() for r in caplog.records))


def test_app_returns_without_completing_response_closes(serve, caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        assert c.read_head()[0] == 200
        assert c.read_until_close() == b"1\r\nx\r\n"
    wait_until(lambda: any("without completing response" in r.getMessage() for r in caplog.records))


START = "http.response.start"
INVALID = [
    ([{"type": "http.response.body", "body": b""}], "Expected ASGI message 'http.response.start'"),
    ([{"type": "http.response.start", "status": "200"}], "'status'"),
    ([{"type": "http.response.start", "status": 101}], "'status'"),
    ([{"type": "http.response.start", "status": 200, "headers": [("x", "y")]}], "must be bytes"),
    ([{"type": "http.response.start", "status": 200, "headers": [(b"x",)]}], "[name, value]"),
    (
        [{"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb")]}],
        "Invalid header value",
    ),
    (
        [{"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\x00b")]}],
        "Invalid header value",
    ),
    (
        [{"type": "http.response.start", "status": 200, "headers": [(b"bad name", b"v")]}],
        "Invalid header name",
    ),
    (
        [{"type": "http.response.start", "status": 200}, {"type": "http.response.start", "status": 200}],
        "Expected ASGI message 'http.response.body'",
    ),
    (
        [{"type": "http.response.start", "status": 200}, {"type": "http.response.body", "body": "text"}],
        "must be bytes",
    ),
    (
        [
            {"type": "http.response.start", "status": 200},
            {"type": "http.response.body"},
            {"type": "http.response.body"},
        ],
        "after response already completed",
    ),
    (["not a dict"], "must be a dict"),
]


@pytest.mark.parametrize("messages,error", INVALID)
def test_invalid_asgi_messages_raise_runtime_error_in_app(serve, caplog, messages, error):
    raised = []

    async def app(scope, receive, send):
        try:
            for message in messages:
                await send(message)
        except RuntimeError as exc:
            raised.append(str(exc))
            raise

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
        assert resp.status == (200 if "already completed" in error else 500)
        assert b"Traceback" not in resp.body
    wait_until(lambda: raised)
    assert error in raised[0]
    wait_until(lambda: any("Exception in ASGI application" in r.getMessage() for r in caplog.records))
    with srv.connect() as c:  # the server keeps serving
        c.send(request())
        c.read_response()


def test_server_keeps_serving_after_errors(serve):
    async def app(scope, receive, send):
        if scope["path"] == "/fail":
            raise RuntimeError("x")
        await text_app()(scope, receive, send)

    srv = serve(app)
    for _ in range(3):
        with srv.connect() as c:
            c.send(request("GET", "/fail"))
            assert c.read_response().status == 500
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 200


def test_header_values_lose_leading_and_trailing_whitespace(serve):
    """RFC 9110 5.5: a field value does not include leading or trailing whitespace; an app
    that sends some (as Django's WSGI handler does for cookies) gets it stripped, not a 500."""

    async def app(scope, receive, send):
        headers = [(b"set-cookie", b" a=1; Path=/"), (b"x-tabbed", b"\tv \t"), (b"x-empty", b"  ")]
        await send({"type": "http.response.start", "status": 200, "headers": headers, "trailers": True})
        await send({"type": "http.response.body", "body": b"ok"})
        await send({"type": "http.response.trailers", "headers": [(b"x-trailer", b" t ")]})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request(headers=[("TE", "trailers")]))
        resp = c.read_response()
    assert resp.status == 200 and resp.body == b"ok"
    assert resp.header(b"set-cookie") == b"a=1; Path=/"
    assert resp.header(b"x-tabbed") == b"v"
    assert resp.header(b"x-empty") == b""
    assert resp.trailers == [(b"x-trailer", b"t")]
