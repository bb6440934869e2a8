"""--request-id-header: the client's id taken when valid, a new one made otherwise; in the ASGI
scope, the headers the app sees, the WSGI environ, the response and the access line."""

from __future__ import annotations

import logging
import re

import pytest
from conftest import RawClient, Recorder, request, text_app, wait_until
from ws_helpers import echo_app, handshake_request

from treadle.server.config import Config

HEX_ID = re.compile(rb"[0-9a-f]{32}")


def _ids(scope) -> list[bytes]:
    return [value for name, value in scope["headers"] if name == b"x-request-id"]


def test_a_request_without_an_id_gets_a_new_one_everywhere(serve, caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    app = Recorder()
    srv = serve(app, request_id_header="X-Request-ID", access_log_format="{status} {request_id}")
    with srv.connect() as c:
        c.send(request() + request())
        first, second = c.read_response(), c.read_response()
    ids = [first.header(b"x-request-id"), second.header(b"x-request-id")]
    assert all(HEX_ID.fullmatch(i) for i in ids) and ids[0] != ids[1]  # one per request
    for scope, ident in zip(app.scopes, ids):
        assert scope["state"]["request_id"] == ident.decode()
        assert _ids(scope) == [ident]  # the app reads it where it reads any header

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "treadle.access"]

    wait_until(lambda: len(lines()) == 2)
    assert lines() == [f"200 {ident.decode()}" for ident in ids]


def test_a_valid_id_from_the_client_is_kept(serve):
    app = Recorder()
    srv = serve(app, request_id_header="X-Request-ID")
    given = "Root=1-5759e988-bd862e3fe1be46a9;Parent=53995c3f42cd8ad8"  # an AWS trace id
    with srv.connect() as c:
        c.send(request(headers=[("X-Request-Id", given)]))
        response = c.read_response()
    assert response.header_list(b"x-request-id") == [given.encode()]
    assert app.scopes[0]["state"]["request_id"] == given
    assert _ids(app.scopes[0]) == [given.encode()]


@pytest.mark.parametrize(
    "fields",
    [
        [("X-Request-ID", "a" * 11)],  # longer than --limit-request-id-length
        [("X-Request-ID", 'ab"cd')],  # could break out of a quoted log field
        [("X-Request-ID", "ab\\cd")],
        [("X-Request-ID", "\xe9t\xe9")],  # not ASCII
        [("X-Request-ID", "one"), ("X-Request-ID", "two")],  # which one?
    ],
    ids=["too-long", "quote", "backslash", "latin-1", "twice"],
)
def test_an_invalid_id_is_replaced(serve, fields):
    app = Recorder()
    srv = serve(app, request_id_header="X-Request-ID", limit_request_id_length=10)
    with srv.connect() as c:
        c.send(request(headers=fields))
        response = c.read_response()
    (echoed,) = response.header_list(b"x-request-id")
    assert HEX_ID.fullmatch(echoed)
    assert _ids(app.scopes[0]) == [echoed]  # the client's values are gone from what the app sees
    assert app.scopes[0]["state"]["request_id"] == echoed.decode()


def test_the_apps_own_field_wins(serve):
    srv = serve(text_app(b"hi", extra=[(b"X-Request-ID", b"from-the-app")]), request_id_header="x-request-id")
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().header_list(b"x-request-id") == [b"from-the-app"]


def test_wsgi_apps_find_it_in_the_environ(serve):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("Content-Length", "0")])
        return []

    srv = serve(app, interface="wsgi", request_id_header="X-Correlation-ID")
    with srv.connect() as c:
        c.send(request(headers=[("X-Correlation-ID", "abc-123")]))
        assert c.read_response().header(b"x-correlation-id") == b"abc-123"
    assert seen["treadle.request_id"] == seen["HTTP_X_CORRELATION_ID"] == "abc-123"


def test_the_servers_own_errors_echo_it_once_a_scope_exists(serve):
    async def failing(scope, receive, send):
        raise RuntimeError("boom")

    srv = serve(failing, request_id_header="X-Request-ID", limit_concurrency=1)
    with srv.connect() as c:
        c.send(request(headers=[("X-Request-ID", "req-1")]))
        response = c.read_response()
    assert (response.status, response.header(b"x-request-id")) == (500, b"req-1")


def test_a_503_before_the_app_has_no_id(serve):
    async def holding(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass

    srv = serve(holding, request_id_header="X-Request-ID", limit_concurrency=1)
    with srv.connect() as busy, srv.connect() as c:
        busy.send(request())
        assert busy.read_head()[0] == 200
        c.send(request(headers=[("X-Request-ID", "req-2")]))
        response = c.read_response()
    assert response.status == 503 and response.header(b"x-request-id") is None


def test_off_by_default(serve):
    app = Recorder()
    srv = serve(app)
    with srv.connect() as c:
        c.send(request(headers=[("X-Request-ID", "abc")]))
        assert c.read_response().header(b"x-request-id") is None
    assert "request_id" not in app.scopes[0]["state"]


def test_a_websocket_handshake_carries_it(serve):
    app = Recorder(echo_app)
    srv = serve(app, request_id_header="X-Request-ID")
    with RawClient(srv.port) as c:
        c.send(handshake_request("/chat", [("X-Request-ID", "ws-1")]))
        status, _, headers, _ = c.read_head()
    assert status == 101 and (b"x-request-id", b"ws-1") in headers
    wait_until(lambda: app.scopes)
    assert app.scopes[0]["state"]["request_id"] == "ws-1"


@pytest.mark.parametrize("name", ["X Request", "Content-Length", "date", "x-id\r\n"])
def test_the_header_must_be_one_the_server_does_not_set(name):
    with pytest.raises(ValueError, match="request_id_header"):
        Config("x:y", request_id_header=name)
