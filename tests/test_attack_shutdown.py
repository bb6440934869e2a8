"""Shutdown and reload under load lose nothing (docs/reliability.md).

An idle keep-alive connection is not closed the moment shutdown begins: its client may have
the next request on the way, and a busy client always has. It gets a second for a request
to arrive, answered with ``Connection: close``. Measured where it matters: a SIGHUP reload
under wrk's keep-alive load, and SIGTERM under busy keep-alive clients.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from typing import Any

import pytest
from conftest import RawClient, request, text_app, wait_until
from prod_support import Proc
from tls_support import client_context, tls_options

from loadtests.attack.processes import WrkReport, _established
from treadle.server.http1.connection import REQUEST_GRACE


def test_an_idle_keep_alive_connection_is_answered_once_more_at_shutdown(serve):
    srv = serve(text_app(b"last"))
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 200
        srv.server.request_shutdown()
        wait_until(lambda: srv.state.closing)
        c.send(request())  # the request a busy client sends as shutdown begins
        response = c.read_response()
        assert (response.status, response.body) == (200, b"last")
        assert response.header(b"connection") == b"close"
        assert c.is_closed()


def test_a_silent_keep_alive_connection_is_closed_after_the_grace(serve):
    srv = serve(text_app(), timeout_keep_alive=30)
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 200
        started = time.monotonic()
        srv.server.request_shutdown()
        assert c.is_closed(timeout=5)
        assert REQUEST_GRACE * 0.5 < time.monotonic() - started < REQUEST_GRACE + 2
        assert c.buffer == b""


def test_a_connection_accepted_as_shutdown_begins_is_answered(serve):
    # Shutdown begins in the same loop turn that accepts the connection, so the server's
    # shutdown runs before the connection is made (connection_made is a callback later in
    # that turn). It must still be waited for, given the grace and answered, not reset.
    answer = text_app(b"late")

    async def slow(scope: Any, receive: Any, send: Any) -> None:  # still working when the wait would end
        await asyncio.sleep(0.3)
        await answer(scope, receive, send)

    srv = serve(slow)
    clients: list[RawClient] = []

    def connect_then_shut_down() -> None:  # on the reactor thread, between two selects
        client = srv.connect()  # the kernel completes the handshake: the listener is readable
        client.send(request())
        clients.append(client)
        srv.server.request_shutdown()  # queued ahead of the accept the next select reports

    srv.server.loop.call_soon_threadsafe(connect_then_shut_down)
    wait_until(lambda: clients)
    with clients[0] as c:
        response = c.read_response()
        assert (response.status, response.body) == (200, b"late")
        assert response.header(b"connection") == b"close"
        assert c.is_closed()


def test_a_tls_handshake_under_way_as_shutdown_begins_is_finished_and_answered(serve_once, certs):
    # The client's hello is answered, so the server has accepted the connection and is in
    # the handshake, with no HTTP connection made yet, when shutdown begins.
    srv = serve_once(text_app(b"secure"), **tls_options(certs))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(certs).wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:

        def handshake_step() -> bool:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            sock.sendall(outgoing.read())
            return done

        assert not handshake_step()  # the client hello goes out
        incoming.write(sock.recv(65536))  # the server's answer: the handshake is under way
        srv.server.request_shutdown()
        wait_until(lambda: srv.state.closing)
        while not handshake_step():
            incoming.write(sock.recv(65536))
        tls.write(request())
        sock.sendall(outgoing.read())
        received, closed = b"", False
        while not closed:  # to the server's close_notify, after its Connection: close answer
            data = sock.recv(65536)
            assert data, f"closed without close_notify after {received!r}"
            incoming.write(data)
            try:
                while not closed:
                    piece = tls.read(65536)
                    received += piece
                    closed = not piece  # close_notify
            except ssl.SSLWantReadError:
                pass  # all that came is read
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"secure", received
    assert b"\r\nconnection: close" in head.lower()


def established(port: int) -> int:
    """Established TCP connections to ``port`` on this machine (/proc/net/tcp), server side."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in list(table)[1:]]
    return sum(1 for row in rows if int(row[1].rsplit(":", 1)[1], 16) == port and row[3] == "01")


@pytest.fixture
def workers():
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--workers", "2", "--no-access-log",
                        "--timeout-graceful-shutdown", "5")
    try:
        port = proc.port()
        index = 0
        for _ in range(2):
            index = proc.seen.index(proc.wait_for(r"Worker \[\d+\] ready", after=index).string) + 1
        yield proc, port
    finally:
        proc.kill_group()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_reload_under_wrk_load_loses_no_request(workers):
    proc, port = workers
    wrk = subprocess.Popen(["wrk", "-t1", "-c20", "-d4s", "--timeout", "5s", f"http://127.0.0.1:{port}/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: established(port) >= 20)  # wrk's connections are up, and busy
        proc.signal(signal.SIGHUP)
        proc.wait_for(r"Reload complete: 2 new worker\(s\) serving", timeout=15)
        out, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert re.search(r"\d+ requests in", out), out
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_worker_killed_under_wrk_load_costs_only_its_own_connections(workers):
    """SIGKILL leaves the killed worker's connections to the kernel, which resets them: wrk
    counts those as socket errors, and only those; it reconnects and the worker left, then its
    replacement, serve on."""
    proc, port = workers
    pids = {int(pid) for pid in re.findall(r"Worker \[(\d+)\] ready", "\n".join(proc.seen))}
    wrk = subprocess.Popen(["wrk", "-t1", "-c20", "-d3s", "--timeout", "5s", f"http://127.0.0.1:{port}/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: established(port) >= 20)
        victim = max(pids, key=lambda pid: len(_established(pid, port)))  # the busiest
        its_connections = len(_established(victim, port))
        mark = len(proc.seen)
        os.kill(victim, signal.SIGKILL)
        proc.wait_for(r"Worker \[\d+\] ready", after=mark)
        out, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    report = WrkReport.parse(out)
    assert report.requests > 1000, out
    assert report.socket_errors <= its_connections and report.non_2xx == 0, out


def test_sigterm_under_busy_keep_alive_clients_cuts_no_response(workers):
    proc, port = workers
    outcomes: list[str] = []
    lock = threading.Lock()
    going = threading.Barrier(6)

    def client() -> None:
        with RawClient(port, timeout=15) as c:
            rounds = 0
            while True:
                c.send(request("GET", "/?sleep=0.05"))
                rounds += 1
                if rounds == 2:
                    going.wait(10)
                try:
                    response = c.read_response()
                except ConnectionError as exc:  # a response cut, or a request never answered
                    with lock:
                        outcomes.append(f"failed: {exc}")
                    return
                if response.header(b"connection") == b"close":
                    with lock:
                        outcomes.append("closed after a response")
                    return

    clients = [threading.Thread(target=client) for _ in range(5)]
    for thread in clients:
        thread.start()
    going.wait(10)  # every client is busy
    proc.signal(signal.SIGTERM)
    for thread in clients:
        thread.join(20)
    assert outcomes == ["closed after a response"] * 5
    assert proc.finish() == 0
