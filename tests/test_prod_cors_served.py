"""Built-in CORS over real sockets, the same cases for an ASGI app, a WSGI app (checked by
``wsgiref.validate``) and a mounted WSGI app: both kinds decide through one ``CORSPolicy``."""

from __future__ import annotations

import sys
from wsgiref.validate import validator

import pytest
from conftest import request as raw_request

ORIGIN = "https://app.example"
CORS = {
    "cors_allow_origins": [ORIGIN],
    "cors_allow_methods": ["GET", "PUT"],
    "cors_allow_headers": ["X-Token"],
    "cors_max_age": 120,
}


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain"), (b"vary", b"Accept-Encoding")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"app"})


def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", "Accept-Encoding")])
    return [b"app"]


def failing_wsgi_app(environ, start_response):
    """Starts a response, then replaces it after an error, as PEP 3333 allows with exc_info."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("late failure")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"failed"]


@pytest.fixture(params=["asgi", "wsgi", "mounted-wsgi"])
def cors_server(serve, request):
    """``cors_server(**extra)``: a server with CORS on, for the app kind of the param."""

    def start(**extra):
        options = dict(CORS, **extra)
        if request.param == "asgi":
            return serve(asgi_app, **options), "/"
        if request.param == "wsgi":
            return serve(validator(wsgi_app), interface="wsgi", **options), "/"
        # No main app: only the mounted WSGI app can answer 200.
        return serve(None, mounts=[("/legacy", validator(wsgi_app), "wsgi")], **options), "/legacy/x"

    return start


def fetch(srv, target, method="GET", headers=()):
    with srv.connect() as c:
        c.send(raw_request(method, target, list(headers)))
        return c.read_response(head_request=method == "HEAD")


def preflight(srv, target, method="PUT", request_headers=None, origin=ORIGIN):
    headers = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if request_headers:
        headers.append(("Access-Control-Request-Headers", request_headers))
    return fetch(srv, target, "OPTIONS", headers)


def test_preflight_allowed(cors_server):
    srv, target = cors_server()
    resp = preflight(srv, target, request_headers="x-token")
    assert (resp.status, resp.body) == (204, b"")
    assert resp.header(b"access-control-allow-origin") == ORIGIN.encode()
    assert b"PUT" in resp.header(b"access-control-allow-methods")
    assert resp.header(b"access-control-allow-headers") == b"x-token"
    assert resp.header(b"access-control-max-age") == b"120"
    assert resp.header_list(b"vary") == [b"Origin"]
    assert resp.header(b"access-control-allow-credentials") is None


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"origin": "https://evil.example"}, b"origin"),
        ({"method": "DELETE"}, b"method"),
        ({"request_headers": "X-Token, X-Other"}, b"headers"),
    ],
)
def test_preflight_rejections_are_400(cors_server, kwargs, problem):
    srv, target = cors_server()
    resp = preflight(srv, target, **kwargs)
    assert resp.status == 400
    assert problem in resp.body
    assert resp.header_list(b"vary") == [b"Origin"]
    assert resp.header(b"access-control-allow-origin") is None


def test_actual_request_from_an_allowed_origin(cors_server):
    srv, target = cors_server()
    resp = fetch(srv, target, headers=[("Origin", ORIGIN)])
    assert (resp.status, resp.body) == (200, b"app")
    assert resp.header(b"access-control-allow-origin") == ORIGIN.encode()
    assert resp.header(b"access-control-allow-credentials") is None
    assert resp.header_list(b"vary") == [b"Accept-Encoding, Origin"]


def test_actual_request_from_a_disallowed_origin_gets_nothing_added_but_vary(cors_server):
    srv, target = cors_server()
    resp = fetch(srv, target, headers=[("Origin", "https://evil.example")])
    assert (resp.status, resp.body) == (200, b"app")
    assert resp.header(b"access-control-allow-origin") is None
    assert resp.header_list(b"vary") == [b"Accept-Encoding, Origin"]  # the answer depends on the origin


def test_request_without_origin_passes_untouched(cors_server):
    srv, target = cors_server()
    resp = fetch(srv, target, "OPTIONS", [("Access-Control-Request-Method", "PUT")])
    assert (resp.status, resp.body) == (200, b"app")
    assert resp.header(b"access-control-allow-origin") is None
    assert resp.header_list(b"vary") == [b"Accept-Encoding"]


def test_credentials(cors_server):
    srv, target = cors_server(cors_allow_credentials=True)
    resp = preflight(srv, target)
    assert resp.status == 204
    assert resp.header(b"access-control-allow-credentials") == b"true"
    resp = fetch(srv, target, headers=[("Origin", ORIGIN)])
    assert resp.header(b"access-control-allow-origin") == ORIGIN.encode()
    assert resp.header(b"access-control-allow-credentials") == b"true"


def test_wsgi_headers_replaced_with_exc_info_get_cors_too(serve):
    srv = serve(validator(failing_wsgi_app), interface="wsgi", **CORS)
    resp = fetch(srv, "/", headers=[("Origin", ORIGIN)])
    assert (resp.status, resp.body) == (500, b"failed")
    assert resp.header(b"access-control-allow-origin") == ORIGIN.encode()
    assert resp.header_list(b"vary") == [b"Origin"]
