"""Hostile HTTP/1.1 clients, many at once (docs/reliability.md): slowloris heads, stalled
bodies, pipelining floods that read nothing, resets and half-closes at every point, and
heads too large or with countless fields. Each holds only what its defence allows, and a
control client is served promptly throughout.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from conftest import Recorder, request, text_app, wait_until

from treadle.server.http1.connection import MAX_PIPELINED
from treadle.server.http1.states import State

ATTACKERS = 200
DEADLINE = 0.5


def control_latency(srv) -> float:
    """Seconds for one fresh request from a well-behaved client."""
    started = time.monotonic()
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 200
    return time.monotonic() - started


def connect_all(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def answers(socks: list[socket.socket]) -> list[bytes]:
    """What each connection got before the server closed it (a reset counts as b"")."""
    got = []
    for sock in socks:
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        got.append(data)
    return got


def test_many_slowloris_heads_get_408_at_the_deadline_while_others_are_served(serve):
    srv = serve(text_app(), timeout_request_header=DEADLINE)
    socks = connect_all(srv.port, ATTACKERS)
    try:
        started = time.monotonic()
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert control_latency(srv) < DEADLINE  # served at once, beside them
        for sock in socks:
            sock.sendall(b"X-Still: coming\r\n")  # progress does not move the deadline
        got = answers(socks)
        elapsed = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert all(data.startswith(b"HTTP/1.1 408 ") for data in got)
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + 5
    wait_until(lambda: not srv.state.connections)


def test_many_stalled_bodies_get_408_while_others_are_served(serve):
    app = Recorder(text_app())  # reads the whole body before answering
    srv = serve(app, timeout_request_body=DEADLINE)
    socks = connect_all(srv.port, ATTACKERS)
    try:
        for sock in socks:
            sock.sendall(request("POST", headers=[("Content-Length", "1000")]) + b"x" * 10)
        wait_until(lambda: srv.state.active_requests == ATTACKERS)
        assert control_latency(srv) < DEADLINE
        got = answers(socks)
    finally:
        for sock in socks:
            sock.close()
    assert all(data.startswith(b"HTTP/1.1 408 ") for data in got)
    wait_until(lambda: not srv.state.connections and srv.state.active_requests == 0)


def test_a_pipelining_flood_that_reads_nothing_holds_bounded_buffers_then_is_dropped(serve):
    srv = serve(text_app(b"x" * 100), timeout_send=DEADLINE, access_log=False)
    flood = request() * 10_000  # 280 KB a send
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    conn = wait_until(lambda: next(iter(srv.state.connections), None))
    peak = {"write": 0, "read": 0}
    sampling = True

    def sample() -> None:
        while sampling:
            transport = conn.transport
            if transport is not None:
                peak["write"] = max(peak["write"], transport.get_write_buffer_size())
                peak["read"] = max(peak["read"], len(conn.parser.trailing_data[0]))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    sent = 0
    try:
        sock.settimeout(10)
        while sent < 64 * 1024 * 1024:  # far more than it will take
            sent += sock.send(flood)
    except OSError:
        pass  # dropped by the send deadline, mid-flood
    finally:
        sampling = False
        sampler.join()
        sock.close()
    wait_until(lambda: not srv.state.connections)
    assert conn._state is State.CLOSED
    assert sent < 32 * 1024 * 1024
    # The write buffer stops at its high-water mark plus one response; unanswered requests
    # at the cap plus one read (MAX_RECV) or so.
    assert peak["write"] <= 64 * 1024 + 256
    assert peak["read"] <= MAX_PIPELINED + 2 * 256 * 1024
    assert control_latency(srv) < DEADLINE


def _reset(sock: socket.socket) -> None:
    """Close with RST: SO_LINGER on, zero seconds."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("how", ["reset", "half-close"])
@pytest.mark.parametrize("when", ["mid-head", "mid-body", "mid-response"])
def test_a_client_that_resets_or_half_closes_leaves_nothing_behind(serve, how, when):
    outcome = []

    async def app(scope, receive, send):
        if scope["path"] == "/":
            return await text_app()(scope, receive, send)
        if scope["path"] == "/body":
            while (message := await receive())["type"] == "http.request":
                pass
            outcome.append(message["type"])
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            while True:
                await send({"type": "http.response.body", "body": b"r" * 65536, "more_body": True})
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise

    srv = serve(app, timeout_send=DEADLINE)  # for the half-closed client that reads nothing more
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    if when == "mid-head":
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n")
    elif when == "mid-body":
        sock.sendall(request("POST", "/body", headers=[("Content-Length", "100000")]) + b"b" * 5000)
    else:
        sock.sendall(request("GET", "/stream"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    wait_until(lambda: srv.state.connections)
    if how == "reset":
        _reset(sock)
    else:
        sock.shutdown(socket.SHUT_WR)  # a client that half-closes is treated as gone (uvicorn)
    try:
        wait_until(lambda: not srv.state.connections and srv.state.active_requests == 0)
    finally:
        sock.close()
    if when == "mid-body":
        assert outcome == ["http.disconnect"]  # the app, waiting in receive(), is told
    elif when == "mid-response":
        assert outcome == ["ClientDisconnected"]  # the app learnt of it at its next send()
    assert control_latency(srv) < DEADLINE


def test_a_head_of_countless_fields_is_431_and_a_large_one_within_the_limit_is_served(serve):
    srv = serve(text_app(b"fine"))
    countless = "".join(f"X-{i}: {i}\r\n" for i in range(5000))  # ~50 KB of tiny fields
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + countless.encode() + b"\r\n")
        assert c.read_response().status == 431
        assert c.is_closed()
    many = "".join(f"X-{i}: {'v' * 120}\r\n" for i in range(90))  # ~11.7 KB in 90 fields: within both limits
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + many.encode() + b"\r\n")
        assert c.read_response().body == b"fine"
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * 1024 * 1024 + b"\r\n\r\n")
        assert c.read_response().status == 431
    assert control_latency(srv) < DEADLINE
