"""Slow readers: clients that take a response slowly, or not at all (docs/reliability.md).

A client that reads nothing must not hold the server's memory (the write buffer stops at its
high-water mark and the app waits in ``send()``) nor, for ever, its connection: after
``--timeout-send`` without taking a byte it is dropped, whether the app is still sending, the
response is complete, or the connection is closing with bytes unsent. A client that keeps
taking something, however slowly, is never cut off.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from conftest import Recorder, request, wait_until
from ws_helpers import Events, RawPeer

from treadle.server import Config
from treadle.server.exchange import ClientDisconnected

SEND_TIMEOUT = 0.4
CHUNK = 64 * 1024
BIG = 8 * 1024 * 1024  # well past the kernel's socket buffers on loopback


def reader_that_never_reads(port: int) -> socket.socket:
    """A connection whose receive buffer is small, so the kernel stops taking bytes soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def dropped(sock: socket.socket) -> bool:
    """Read until the server closed (EOF or reset); the bytes read do not matter here."""
    try:
        while sock.recv(1 << 20):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    return True


async def streaming_app(scope, receive, send):
    """Streams 64 KiB chunks until the client is gone."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    while True:
        await send({"type": "http.response.body", "body": b"s" * CHUNK, "more_body": True})


async def big_app(scope, receive, send):
    """One 8 MiB body in a single send(): complete at once, though the client has none of it."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % BIG)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"b" * BIG})


def test_the_default_is_nginx_send_timeout_and_zero_turns_it_off():
    assert Config("app:app").timeout_send == 60.0
    assert Config("app:app", timeout_send=0).timeout_send is None


def test_a_client_that_never_reads_a_stream_is_dropped_and_its_app_told(serve):
    app = Recorder(streaming_app)
    srv = serve(app, timeout_send=SEND_TIMEOUT)
    sock = reader_that_never_reads(srv.port)
    try:
        sock.sendall(request())
        conn = wait_until(lambda: next(iter(srv.state.connections), None))
        wait_until(lambda: conn._write_paused)  # the kernel buffers are full: the app waits in send()
        paused_at = time.monotonic()
        assert conn.transport.get_write_buffer_size() <= 64 * 1024 + CHUNK  # high water + one chunk
        wait_until(lambda: app.errors, timeout=10)
        assert time.monotonic() - paused_at >= SEND_TIMEOUT * 0.9
        assert isinstance(app.errors[0], ClientDisconnected)
        wait_until(lambda: not srv.state.connections)
        assert dropped(sock)
    finally:
        sock.close()


@pytest.mark.parametrize("connection", ["keep-alive", "close"])
def test_a_complete_response_nobody_reads_does_not_hold_the_connection(serve, connection):
    # The app is done at once; 8 MiB wait in the transport. Keep-alive or closing, the
    # connection must not wait for a reader for ever.
    srv = serve(big_app, timeout_send=SEND_TIMEOUT, timeout_keep_alive=0.1)
    sock = reader_that_never_reads(srv.port)
    try:
        sock.sendall(request(headers=[("Connection", connection)]))
        conn = wait_until(lambda: next(iter(srv.state.connections), None))
        wait_until(lambda: conn._request is None)  # logged: the response is complete
        started = time.monotonic()
        wait_until(lambda: not srv.state.connections, timeout=10)
        assert time.monotonic() - started < SEND_TIMEOUT + 5
        assert dropped(sock)
    finally:
        sock.close()


def test_a_slow_reader_that_keeps_reading_gets_everything(serve):
    # Pauses shorter than the send timeout between bursts: progress in every window.
    srv = serve(big_app, timeout_send=SEND_TIMEOUT)
    sock = reader_that_never_reads(srv.port)
    try:
        sock.sendall(request())
        received = bytearray()
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        received = bytearray(body)
        conn = wait_until(lambda: next(iter(srv.state.connections), None))
        wait_until(lambda: conn._write_paused)
        pauses = 0
        while len(received) < BIG:
            if len(received) // (1024 * 1024) > pauses:  # every MiB, stop reading for a while
                pauses += 1
                time.sleep(SEND_TIMEOUT / 2)
            received += sock.recv(65536)
        assert pauses >= 4
        assert bytes(received) == b"b" * BIG
        sock.sendall(request())  # and the connection is still there for the next request
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


def test_a_file_nobody_reads_is_not_sent_for_ever(serve, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * BIG)
    outcome = []

    async def app(scope, receive, send):
        headers = [(b"content-length", b"%d" % BIG)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(path, "rb") as file:
            try:
                await send({"type": "http.response.zerocopysend", "file": file})
            except BaseException as exc:
                outcome.append(exc)
                raise

    srv = serve(app, timeout_send=SEND_TIMEOUT)
    sock = reader_that_never_reads(srv.port)
    try:
        sock.sendall(request())
        wait_until(lambda: outcome, timeout=10)
        assert isinstance(outcome[0], OSError)  # ClientDisconnected, or the sendfile's ConnectionError
        wait_until(lambda: not srv.state.connections)
    finally:
        sock.close()


def test_a_wsgi_app_writing_to_a_client_that_never_reads_is_released(serve):
    closed = threading.Event()

    class Endless:
        def __iter__(self):
            while True:
                yield b"w" * CHUNK

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Endless()

    srv = serve(app, timeout_send=SEND_TIMEOUT)
    sock = reader_that_never_reads(srv.port)
    try:
        sock.sendall(request())
        assert closed.wait(10), "the worker is still writing to a client that reads nothing"
        wait_until(lambda: not srv.state.connections)
    finally:
        sock.close()


def test_a_websocket_peer_that_never_reads_is_dropped_without_keepalive(serve):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"m" * CHUNK})
        except BaseException as exc:
            seen.add(type(exc).__name__)
            message = await receive()
            seen.add(message)
            raise

    # No pings: without the send deadline nothing would ever end this session.
    srv = serve(app, timeout_send=SEND_TIMEOUT, ws_ping_interval=0, ws_per_message_deflate=False)
    with RawPeer(srv.port, rcvbuf=4096) as peer:
        peer.handshake()
        wait_until(lambda: len(seen()) == 2, timeout=10)
        assert seen()[1] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        wait_until(lambda: not srv.state.connections)
        assert peer.closed_by_server()


def test_a_websocket_peer_reading_slowly_stays(serve):
    count = 64  # 4 MiB: past the kernel's buffers, so writing pauses and resumes
    done = threading.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        for i in range(count):
            await send({"type": "websocket.send", "bytes": bytes([i]) * CHUNK})
        done.set()
        await receive()  # the disconnect at shutdown

    srv = serve(app, timeout_send=SEND_TIMEOUT, ws_per_message_deflate=False)
    with RawPeer(srv.port, rcvbuf=4096, timeout=10) as peer:
        peer.handshake()
        conn = wait_until(lambda: next(iter(srv.state.connections), None))
        wait_until(lambda: conn._write_paused)
        for i in range(count):
            if i % 16 == 15:
                time.sleep(SEND_TIMEOUT / 2)
            assert peer.next_message() == bytes([i]) * CHUNK
        assert done.wait(5)
