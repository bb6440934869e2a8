"""One access-log line per request, whatever way its response ended, with the body bytes sent.

A response can be ended by several paths at once (the app fails after starting it and then
the connection closes; an error response and then its lingering close; the client leaves and
the app's next send fails): each case below once wrote two lines and counted the response twice
in the stats.
"""

from __future__ import annotations

import logging
import re
import socket

import pytest
from conftest import request, text_app, wait_until


def _access_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "treadle.access"]


def _settled(srv) -> None:
    """Every connection closed and every app returned: nothing is left that could log."""
    wait_until(lambda: not srv.state.connections and not srv.state.tasks and not srv.state.active_requests)


@pytest.fixture
def access(caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    return caplog


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_wsgi_500_is_one_line(serve, access):
    def app(environ, start_response):
        raise ValueError("boom")

    srv = serve(app, interface="wsgi")
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 500
    _settled(srv)
    (line,) = _access_lines(access)
    assert '"GET / HTTP/1.1" 500 26 ' in line


def test_an_asgi_app_raising_after_the_response_started_is_one_line(serve, access):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("after start")

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        assert c.read_head()[0] == 200
        assert c.read_until_close() == b"4\r\npart\r\n"  # cut short: no final chunk
    _settled(srv)
    (line,) = _access_lines(access)
    assert '"GET / HTTP/1.1" 200 4 ' in line


def test_a_chunked_upload_refused_with_413_is_one_line(serve, access):
    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    srv = serve(app, limit_request_body_size=1000)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Transfer-Encoding", "chunked")]) + b"800\r\n" + b"a" * 2048 + b"\r\n")
        assert c.read_response().status == 413
    _settled(srv)
    (line,) = _access_lines(access)
    assert '"POST / HTTP/1.1" 413 ' in line


def test_a_download_the_client_abandoned_is_one_line_with_the_bytes_written(serve, access):
    chunk = b"x" * 65536

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(10_000):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app)
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(request())
    assert sock.recv(1000).startswith(b"HTTP/1.1 200 OK")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    sock.close()
    _settled(srv)
    (line,) = _access_lines(access)
    sent = int(re.search(r'" 200 (\d+) ', line).group(1))
    assert sent > 0 and sent % len(chunk) == 0, line  # whole chunks handed to the connection
    assert sent < 10_000 * len(chunk)


def test_a_forwarded_ipv6_client_is_logged_in_brackets(serve, access):
    srv = serve(text_app(), proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    with srv.connect() as c:
        c.send(request(headers=[("X-Forwarded-For", "2001:db8::1")]))
        assert c.read_response().status == 200
    _settled(srv)
    (line,) = _access_lines(access)
    assert line.startswith('[2001:db8::1]:0 - "GET / HTTP/1.1" 200 5 ')
