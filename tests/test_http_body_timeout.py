"""``--timeout-request-body``: how long a client may go without sending body bytes it owes.

It is an idle clock, restarted by every chunk; it stops while the server, not the client,
holds the body up (reading paused because the app is behind; a client waiting for its
100 Continue). Times are measured, never slept on in hope.
"""

from __future__ import annotations

import asyncio
import time

from conftest import read_body, request, text_app, wait_until

from treadle.server.cli import build_parser

HEAD = b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n"


def _size_app():
    async def app(scope, receive, send):
        body = await read_body(receive)
        text = b"%d" % len(body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(text))]})
        await send({"type": "http.response.body", "body": text})

    return app


def test_a_stalled_body_gets_408_and_the_app_sees_a_disconnect(serve):
    seen = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return

    srv = serve(app, timeout_request_body=0.3)
    with srv.connect() as c:
        c.send(HEAD + b"abc")  # 3 of 10 bytes, then nothing
        started = time.monotonic()
        resp = c.read_response()
        elapsed = time.monotonic() - started
        assert resp.status == 408
        assert resp.header(b"connection") == b"close"
        assert c.is_closed()
    assert 0.25 <= elapsed < 3.0
    # The app runs on the reactor thread: the client may see the close before the app's task
    # has taken its http.disconnect.
    wait_until(lambda: seen and seen[-1] == "http.disconnect")


def test_the_clock_restarts_with_every_chunk(serve):
    srv = serve(_size_app(), timeout_request_body=0.4)
    with srv.connect() as c:
        c.send(HEAD)
        started = time.monotonic()
        for byte in b"0123456789":  # ~1 s in all, never 0.4 s without a byte
            c.send(bytes([byte]))
            time.sleep(0.1)
        resp = c.read_response()
    assert (resp.status, resp.body) == (200, b"10")
    assert time.monotonic() - started > 0.4  # longer than the timeout in total, yet served


def test_an_app_slow_to_read_is_not_the_clients_fault(serve):
    """Reading pauses once 64 KiB wait unread: the clock must not run while it is paused."""
    body = b"x" * (512 * 1024)

    async def app(scope, receive, send):
        await asyncio.sleep(0.8)  # well past the timeout, with the client's body all sent
        await _size_app()(scope, receive, send)

    srv = serve(app, timeout_request_body=0.3)
    with srv.connect() as c:
        c.send(request("POST", "/", body=body))
        resp = c.read_response()
    assert (resp.status, resp.body) == (200, b"%d" % len(body))


def test_a_client_waiting_for_100_continue_is_not_timed(serve):
    async def app(scope, receive, send):
        await asyncio.sleep(0.6)  # decides late to read the body, which sends the 100
        await _size_app()(scope, receive, send)

    srv = serve(app, timeout_request_body=0.3)
    with srv.connect() as c:
        c.send(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n")
        status, _, _, _ = c.read_head()
        assert status == 100
        c.send(b"0123456789")
        resp = c.read_response()
    assert (resp.status, resp.body) == (200, b"10")


def test_a_stalled_rest_of_body_after_an_early_response_closes(serve):
    """The app answered without reading; the rest is drained, and a stalled rest closes."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    srv = serve(app, timeout_request_body=0.3)
    with srv.connect() as c:
        c.send(HEAD + b"abc")
        assert c.read_response().body == b"ok"
        started = time.monotonic()
        assert c.is_closed()
    assert 0.25 <= time.monotonic() - started < 3.0
    wait_until(lambda: not srv.state.connections)
    assert srv.state.stats.responses == 1  # counted (and logged) once, when it was sent


def test_zero_disables_it(serve):
    srv = serve(text_app(), timeout_request_body=0)
    assert srv.server.config.timeout_request_body is None


def test_the_flag():
    assert build_parser().parse_args(["app:app"]).timeout_request_body == 60.0
    assert build_parser().parse_args(["app:app", "--timeout-request-body", "5"]).timeout_request_body == 5.0
