"""Timeouts and limits: keep-alive idle, the request-head deadline (slowloris),
--limit-concurrency, and graceful shutdown with and without stragglers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from conftest import request, text_app, wait_until


def _closed_after(client, started: float, timeout: float = 5.0) -> float:
    assert client.is_closed(timeout), "server did not close the connection"
    return time.monotonic() - started


def test_keep_alive_timeout_closes_idle_connection(serve):
    srv = serve(text_app(), timeout_keep_alive=0.3)
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 200
        started = time.monotonic()
        elapsed = _closed_after(c, started)
        assert 0.25 <= elapsed < 3.0
        assert c.buffer == b""  # closed silently, no response
    wait_until(lambda: not srv.state.connections)


def test_keep_alive_connection_survives_within_timeout(serve):
    srv = serve(text_app(), timeout_keep_alive=2.0)
    with srv.connect() as c:
        for _ in range(3):
            c.send(request())
            assert c.read_response().status == 200


def test_header_deadline_sends_408_for_a_slow_head(serve):
    srv = serve(text_app(), timeout_request_header=0.4)
    with srv.connect() as c:
        started = time.monotonic()
        # Dribble a head one byte at a time: each byte is "progress", the deadline is not reset.
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":
            c.send(bytes([byte]))
            if time.monotonic() - started > 0.2:
                break
            time.sleep(0.01)
        resp = c.read_response()
        assert resp.status == 408
        assert resp.header(b"connection") == b"close"
        assert c.is_closed()
        assert time.monotonic() - started < 3.0


def test_header_deadline_closes_a_silent_connection(serve):
    srv = serve(text_app(), timeout_request_header=0.3)
    with srv.connect() as c:
        started = time.monotonic()
        elapsed = _closed_after(c, started)
        assert 0.25 <= elapsed < 3.0
        assert c.buffer == b""


def test_header_deadline_does_not_limit_the_app(serve):
    async def slow(scope, receive, send):
        await asyncio.sleep(0.5)
        await text_app(b"late")(scope, receive, send)

    srv = serve(slow, timeout_request_header=0.2)
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().body == b"late"


def test_limit_concurrency_answers_503(serve):
    release = threading.Event()
    entered = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/block":
            entered.set()
            while not release.is_set():
                await asyncio.sleep(0.005)
        await text_app()(scope, receive, send)

    srv = serve(app, limit_concurrency=1)
    with srv.connect() as first:
        first.send(request("GET", "/block"))
        wait_until(entered.is_set)
        with srv.connect() as second:
            second.send(request())
            resp = second.read_response()
            assert resp.status == 503
            assert resp.header(b"connection") == b"close"
        release.set()
        assert first.read_response().status == 200
    with srv.connect() as third:
        third.send(request())
        assert third.read_response().status == 200


def test_graceful_shutdown_finishes_in_flight_and_closes_idle(serve):
    release = threading.Event()
    entered = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/slow":
            entered.set()
            while not release.is_set():
                await asyncio.sleep(0.005)
        await text_app(b"done")(scope, receive, send)

    srv = serve(app, timeout_graceful_shutdown=10)
    idle = srv.connect()
    idle.send(request())
    assert idle.read_response().status == 200
    busy = srv.connect()
    busy.send(request("GET", "/slow"))
    wait_until(entered.is_set)

    srv.server.request_shutdown()
    assert idle.is_closed(), "idle keep-alive connection was not closed"
    # The listener is closed: new connections are refused.
    def refused():
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        except OSError:
            return True
        return False

    wait_until(refused)
    assert srv.server.running
    release.set()
    resp = busy.read_response()
    assert (resp.status, resp.body) == (200, b"done")
    assert resp.header(b"connection") == b"close"
    wait_until(lambda: not srv.server.running)
    idle.close()
    busy.close()


def test_graceful_shutdown_timeout_cancels_stragglers(serve):
    cancelled = threading.Event()
    entered = threading.Event()

    async def app(scope, receive, send):
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    srv = serve(app, timeout_graceful_shutdown=0.3)
    with srv.connect() as c:
        c.send(request())
        wait_until(entered.is_set)
        started = time.monotonic()
        srv.server.request_shutdown()
        assert c.is_closed()
        wait_until(lambda: not srv.server.running)
        assert time.monotonic() - started < 5
    assert cancelled.is_set()


@pytest.mark.parametrize("force", [True])
def test_forced_shutdown_skips_the_grace_period(serve, force):
    entered = threading.Event()

    async def app(scope, receive, send):
        entered.set()
        await asyncio.sleep(3600)

    srv = serve(app, timeout_graceful_shutdown=60)
    with srv.connect() as c:
        c.send(request())
        wait_until(entered.is_set)
        started = time.monotonic()
        srv.server.request_shutdown(force=force)
        wait_until(lambda: not srv.server.running)
        assert time.monotonic() - started < 5
