"""Request scope and HTTP/1.1 message semantics, checked byte for byte over real sockets."""

from __future__ import annotations

import email.utils
import logging
import re

import httpx
import pytest
from conftest import Recorder, request, text_app, wait_until

from treadle import reactor


def test_scope_has_every_key(serve):
    rec = Recorder()
    srv = serve(rec, root_path="/mount")
    with srv.connect() as c:
        c.send(
            request("GET", "/a%20b/caf%C3%A9/%2F?x=1&y=%20", headers=[("X-Thing", "One"), ("x-thing", "two")])
        )
        resp = c.read_response()
        assert resp.status == 200
        local = c.sock.getsockname()
    scope = rec.scopes[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/mount/a b/café//"
    assert scope["raw_path"] == b"/mount/a%20b/caf%C3%A9/%2F"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == "/mount"
    assert scope["headers"] == [(b"host", b"test"), (b"x-thing", b"One"), (b"x-thing", b"two")]
    assert all(type(n) is bytes and type(v) is bytes for n, v in scope["headers"])
    assert scope["client"] == (local[0], local[1])
    assert scope["server"] == ("127.0.0.1", srv.port)
    assert scope["state"] == {}
    assert "http.response.trailers" in scope["extensions"]



def test_root_path_kept_in_the_request_path(serve):
    """--root-path-mode kept: path and raw_path stay as sent (they start with root_path);
    a request outside the root path is not this app's: 404."""
    rec = Recorder()
    srv = serve(rec, root_path="/mount", root_path_mode="kept")
    with srv.connect() as c:
        c.send(request("GET", "/mount/a%20b?x=1"))
        assert c.read_response().status == 200
        c.send(request("GET", "/mountain"))
        assert c.read_response().status == 404
    scope = rec.scopes[0]
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == ("/mount/a b", b"/mount/a%20b", "/mount")
    assert len(rec.scopes) == 1

def test_absolute_form_target(serve):
    # RFC 9112 3.2.2: "A server MUST accept the absolute-form in requests" and "MUST ignore the
    # received Host header field (if any) and instead use the host information of the
    # request-target."
    rec = Recorder()
    srv = serve(rec)
    with srv.connect() as c:
        c.send(b"GET http://example.org:8080/abs/path?q=1 HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
        assert c.read_response().status == 200
    assert rec.scopes[0]["path"] == "/abs/path"
    assert rec.scopes[0]["query_string"] == b"q=1"
    assert [v for n, v in rec.scopes[0]["headers"] if n == b"host"] == [b"example.org:8080"]


def test_keep_alive_serves_many_requests_on_one_connection(serve):
    srv = serve(text_app(b"ok"))
    with srv.connect() as c:
        for _ in range(5):
            c.send(request())
            resp = c.read_response()
            assert (resp.status, resp.body) == (200, b"ok")
            assert resp.header(b"connection") is None


def test_pipelined_requests_are_answered_in_order(serve):
    async def app(scope, receive, send):
        body = scope["path"].encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as c:
        c.send(b"".join(request("GET", f"/{i}") for i in range(20)) + request("POST", "/last", body=b"xyz"))
        bodies = [c.read_response().body for _ in range(21)]
    assert bodies == [f"/{i}".encode() for i in range(20)] + [b"/last"]


def test_connection_close_from_client_is_honoured(serve):
    srv = serve(text_app())
    with srv.connect() as c:
        c.send(request(headers=[("Connection", "close")]))
        resp = c.read_response()
        assert resp.header(b"connection") == b"close"
        assert c.is_closed()


def test_connection_close_from_app_is_honoured(serve):
    srv = serve(text_app(extra=[(b"connection", b"close")]))
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
        assert resp.header_list(b"connection") == [b"close"]
        assert c.is_closed()


def test_http10_closes_by_default(serve):
    srv = serve(text_app(b"old"))
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200 and resp.body == b"old"
        assert resp.http_version == b"HTTP/1.1"
        assert resp.header(b"connection") == b"close"
        assert c.is_closed()


def test_http10_keep_alive(serve):
    srv = serve(text_app(b"again"))
    with srv.connect() as c:
        for _ in range(3):
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = c.read_response()
            assert resp.body == b"again"
            assert resp.header(b"connection") == b"keep-alive"


def test_http10_streaming_response_is_close_delimited(serve):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part1,", "more_body": True})
        await send({"type": "http.response.body", "body": b"part2"})

    srv = serve(app)
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = c.read_response()
        assert not resp.chunked
        assert resp.header(b"connection") == b"close"
        assert resp.body == b"part1,part2"


def test_head_keeps_headers_and_sends_no_body(serve):
    srv = serve(text_app(b"twelve bytes"))
    with srv.connect() as c:
        c.send(request("HEAD"))
        resp = c.read_response(head_request=True)
        assert resp.header(b"content-length") == b"12"
        assert resp.header(b"content-type") == b"text/plain"
        # The connection stays usable, proving no body bytes were sent after the head.
        c.send(request("GET"))
        assert c.read_response().body == b"twelve bytes"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(serve, status):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"must not be sent"})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
        assert resp.status == status
        assert resp.header(b"transfer-encoding") is None
        c.send(request())
        assert c.read_response().status == status
        assert c.buffer == b""


def test_date_and_server_headers(serve):
    srv = serve(text_app())
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
    assert resp.header(b"server") == b"treadle"
    date = email.utils.parsedate_to_datetime(resp.header(b"date").decode())
    assert date.tzinfo is not None


def test_app_date_and_server_headers_replace_the_defaults(serve):
    srv = serve(text_app(extra=[(b"Server", b"mine"), (b"Date", b"Thu, 01 Jan 1970 00:00:00 GMT")]))
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
    assert resp.header_list(b"server") == [b"mine"]
    assert resp.header_list(b"date") == [b"Thu, 01 Jan 1970 00:00:00 GMT"]


def test_no_server_no_date_and_custom_headers(serve):
    srv = serve(text_app(), server_header=False, date_header=False, headers=[("X-Env", "test"), ("X-B", "2")])
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
    assert resp.header(b"server") is None
    assert resp.header(b"date") is None
    assert resp.header(b"x-env") == b"test"
    assert resp.header(b"x-b") == b"2"


def test_reason_phrase_and_unknown_status(serve):
    srv = serve(text_app(status=418))
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
    assert resp.status == 418 and resp.reason == b"I'm a Teapot"

    srv2 = serve(text_app(status=599))
    with srv2.connect() as c:
        c.send(request())
        assert c.read_response().status == 599


def test_httpx_client(serve):
    srv = serve(text_app(b"via httpx"))
    with httpx.Client(base_url=srv.url) as client:
        for _ in range(3):
            r = client.get("/x")
            assert r.status_code == 200 and r.text == "via httpx"


@pytest.mark.parametrize("selector", reactor.available_selectors())
def test_every_selector_serves(serve, selector):
    srv = serve(text_app(b"sel"), selector=selector)
    with httpx.Client(base_url=srv.url) as client:
        for _ in range(3):
            assert client.get("/").text == "sel"
    with srv.connect() as c:
        c.send(request() * 3)
        assert [c.read_response().body for _ in range(3)] == [b"sel"] * 3


def test_upgrade_request_is_served_as_plain_http(serve):
    rec = Recorder()
    srv = serve(rec, ws="none")  # with WebSockets on, this handshake (no key) would get a 400
    with srv.connect() as c:
        c.send(request(headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        assert c.read_response().status == 200
        c.send(request())
        assert c.read_response().status == 200
    assert rec.scopes[0]["type"] == "http"


def test_access_log_line(serve, caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    srv = serve(text_app(b"12345"))
    with srv.connect() as c:
        c.send(request("GET", "/logged?a=1"))
        c.read_response()
        port = c.sock.getsockname()[1]
    wait_until(lambda: [r for r in caplog.records if r.name == "treadle.access"])
    line = [r for r in caplog.records if r.name == "treadle.access"][0].getMessage()
    assert re.fullmatch(rf'127\.0\.0\.1:{port} - "GET /logged\?a=1 HTTP/1\.1" 200 5 \d+\.\dms', line), line


def test_access_log_can_be_disabled(serve, caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    srv = serve(text_app(), access_log=False)
    with srv.connect() as c:
        c.send(request())
        c.read_response()
    srv.stop()
    assert not [r for r in caplog.records if r.name == "treadle.access"]
