"""The WSGI environ (PEP 3333) as a real request over a socket produces it."""

from __future__ import annotations

import json
import logging

from conftest import request
from wsgi_apps import environ_app


def _environ(srv, raw: bytes) -> dict:
    with srv.connect() as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == 200, resp.body
        return json.loads(resp.body)


def test_environ_has_every_required_key_with_the_request_values(serve):
    srv = serve(environ_app, interface="wsgi")
    body = b"a=1&b=2"
    with srv.connect() as c:
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        c.send(request("POST", "/caf%C3%A9/x?q=%20y&z", headers=headers, body=body))
        env = json.loads(c.read_response().body)
        client_port = c.sock.getsockname()[1]
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/café/x".encode().decode("latin-1")  # bytes as latin-1
    assert env["QUERY_STRING"] == "q=%20y&z"  # not decoded
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == str(len(body))
    assert env["body"] == "a=1&b=2"
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", str(srv.port))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(client_port))
    assert env["HTTP_HOST"] == "test"
    assert "HTTP_CONTENT_TYPE" not in env["HTTP"] and "HTTP_CONTENT_LENGTH" not in env["HTTP"]
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"]) == (True, False, False)
    assert env["wsgi.input_terminated"] is True


def test_repeated_headers_are_joined_and_cookies_with_semicolons(serve):
    srv = serve(environ_app, interface="wsgi")
    headers = [("X-Tag", "a"), ("X-Tag", "b, c"), ("Cookie", "x=1"), ("Cookie", "y=2")]
    env = _environ(srv, request("GET", "/", headers=headers))
    assert env["HTTP"]["HTTP_X_TAG"] == "a, b, c"
    assert env["HTTP"]["HTTP_COOKIE"] == "x=1; y=2"


def test_header_names_with_underscores_are_dropped(serve):
    # X-Forwarded_For would otherwise land on HTTP_X_FORWARDED_FOR, the key a proxy's
    # X-Forwarded-For sets: a client could forge it past the proxy.
    srv = serve(environ_app, interface="wsgi")
    env = _environ(srv, request("GET", "/", headers=[("X-Forwarded_For", "6.6.6.6"), ("X-Real", "ok")]))
    assert "HTTP_X_FORWARDED_FOR" not in env["HTTP"]
    assert env["HTTP"]["HTTP_X_REAL"] == "ok"


def test_root_path_is_script_name_and_the_rest_path_info(serve):
    srv = serve(environ_app, interface="wsgi", root_path="/base")
    env = _environ(srv, request("GET", "/items/7?x=1"))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/base", "/items/7", "x=1")


def test_root_path_kept_in_the_request_path_moves_to_script_name(serve):
    """--root-path-mode kept (gunicorn's SCRIPT_NAME): the proxy forwards /base/items/7 as it
    is; the prefix moves from PATH_INFO to SCRIPT_NAME, and a path outside it is a 404."""
    srv = serve(environ_app, interface="wsgi", root_path="/base/", root_path_mode="kept")
    env = _environ(srv, request("GET", "/base/items/7?x=1"))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/base", "/items/7", "x=1")
    env = _environ(srv, request("GET", "/base"))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/base", "")
    for outside in ("/items/7", "/basement", "/"):
        with srv.connect() as c:
            c.send(request("GET", outside))
            assert c.read_response().status == 404, outside


def test_http10_request(serve):
    srv = serve(environ_app, interface="wsgi")
    env = _environ(srv, request("GET", "/", version="1.0"))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_wsgi_errors_goes_to_the_error_logger(serve, caplog):
    def app(environ, start_response):
        print("something odd", file=environ["wsgi.errors"])
        environ["wsgi.errors"].writelines(["second\n"])
        environ["wsgi.errors"].flush()
        start_response("204 No Content", [])
        return []

    srv = serve(app, interface="wsgi")
    with caplog.at_level(logging.ERROR, logger="treadle.error"), srv.connect() as c:
        c.send(request("GET", "/"))
        assert c.read_response().status == 204
    messages = [r.getMessage() for r in caplog.records if r.name == "treadle.error"]
    assert messages == ["something odd", "second"]
