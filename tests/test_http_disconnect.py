"""Clients that go away: before the body ends, in the middle of the response, or that never
read; and a thousand connections opened and dropped. The server must notice, tell the app,
bound its memory, and keep answering others."""

from __future__ import annotations

import socket
import threading
import time

from conftest import request, text_app, wait_until

from treadle.server.exchange import ClientDisconnected


def _still_serving(srv):
    with srv.connect() as c:
        c.send(request("GET", "/ok"))
        assert c.read_response().status == 200


def test_http_disconnect_after_body_when_client_goes(serve):
    seen = []

    async def app(scope, receive, send):
        seen.append(await receive())
        seen.append(await receive())  # blocks until the client leaves
        if scope["path"] == "/":
            await text_app()(scope, receive, send)

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("GET", "/wait"))
        wait_until(lambda: seen)
    wait_until(lambda: len(seen) == 2)
    assert seen[0] == {"type": "http.request", "body": b"", "more_body": False}
    assert seen[1] == {"type": "http.disconnect"}


def test_disconnect_mid_body(serve):
    seen = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body"})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Content-Length", "100000")]) + b"x" * 5000)
        wait_until(lambda: seen)
    wait_until(lambda: "http.disconnect" in seen)
    assert seen[0] == "http.request"
    wait_until(lambda: srv.state.active_requests == 0)
    _still_serving(srv)


def test_disconnect_mid_response(serve):
    outcome = []

    async def app(scope, receive, send):
        if scope["path"] == "/ok":
            return await text_app()(scope, receive, send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        except OSError as exc:
            outcome.append(exc)

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        c.read_head()
        c._fill()
    wait_until(lambda: outcome)
    assert isinstance(outcome[0], ClientDisconnected)
    _still_serving(srv)


def test_client_that_never_reads_cannot_grow_server_memory(serve):
    produced = [0]
    finished = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/ok":
            return await text_app()(scope, receive, send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"y" * 65536
        try:
            for _ in range(1024):  # 64 MiB if nothing pushed back
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                produced[0] += len(chunk)
            await send({"type": "http.response.body", "body": b""})
        finally:
            finished.set()

    srv = serve(app)
    c = srv.connect()
    try:
        c.send(request())
        # Wait until the producer has stalled: no progress for 0.3 s.
        last = [-1, time.monotonic()]

        def stalled():
            now = time.monotonic()
            if produced[0] != last[0]:
                last[0], last[1] = produced[0], now
                return False
            return now - last[1] > 0.3

        wait_until(stalled, timeout=10)
        assert not finished.is_set()
        # Kernel socket buffers hold a few MiB; the server itself holds at most ~64 KiB.
        assert produced[0] < 16 * 1024 * 1024
        _still_serving(srv)  # the reactor is not blocked by the stalled writer
    finally:
        c.close()
    wait_until(finished.is_set)


def test_thousand_connections_opened_and_dropped(serve):
    srv = serve(text_app(b"alive"))
    socks = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            if i % 3 == 1:
                s.sendall(b"GET / HTTP/1.1\r\nHo")  # half a head
            elif i % 3 == 2:
                s.sendall(request())  # a full request, response never read
            socks.append(s)
    finally:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().body == b"alive"
    wait_until(lambda: len(srv.state.connections) == 0, timeout=10)
    wait_until(lambda: srv.state.active_requests == 0)


def test_disconnect_wakes_streaming_app_waiting_on_receive(serve):
    """A long-poll app awaiting receive() while streaming learns of the disconnect."""
    got = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        got.append(await receive())

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        c.read_head()
    wait_until(lambda: got)
    assert got == [{"type": "http.disconnect"}]
