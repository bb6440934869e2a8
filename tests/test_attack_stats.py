"""The stats endpoint (--stats-port) under clients that trickle or flood (docs/reliability.md).

It serves each client on a thread of its own with one deadline for its whole request, so
a client sending a byte at a time holds nobody else up, nor the server's shutdown; past
MAX_CLIENTS at once it answers 503 at once rather than queue.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
from conftest import text_app, wait_until

from treadle.server.observe.endpoint import MAX_CLIENTS, StatsEndpoint, _Handler

DEADLINE = _Handler.timeout


@pytest.fixture
def endpoint():
    """The endpoint alone, serving a fixed snapshot (the server's own is tested in test_stats.py)."""
    served = StatsEndpoint("127.0.0.1", 0, lambda: {"server": {}})
    served.start()
    yield served
    started = time.monotonic()
    served.stop()
    assert time.monotonic() - started < DEADLINE  # whoever is still connected


def get_stats(host: str, port: int) -> dict:
    with urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=5) as resp:
        return json.loads(resp.read())


class Trickler(threading.Thread):
    """Sends a request head a byte every 0.2 s, never finishing it; records how it ended."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.address = (host, port)
        self.sent = 0
        self.result: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection(self.address, timeout=10) as sock:
            for byte in b"GET /stats HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 1000:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    self.result.append("closed by the endpoint")
                    return
                self.sent += 1
                if self.stop.wait(0.2):
                    self.result.append("stopped")
                    return
            self.result.append("never closed")

    def __enter__(self) -> Trickler:
        self.start()
        wait_until(lambda: self.sent >= 3)  # connected, and trickling
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(10)


def test_a_trickling_client_holds_no_other_client(endpoint):
    host, port = endpoint.address
    with Trickler(host, port) as slow:
        started = time.monotonic()
        assert "server" in get_stats(host, port)
        assert time.monotonic() - started < 1.0
        wait_until(lambda: slow.result, timeout=DEADLINE + 5)  # and its own time runs out
        assert slow.result == ["closed by the endpoint"]


def test_the_server_shutdown_is_not_held_by_a_trickling_client(serve):
    srv = serve(text_app(), stats_port=0)
    host, port = srv.server.observer.endpoint.address
    with Trickler(host, port):
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < DEADLINE


def test_a_flood_of_silent_clients_gets_503_at_once_then_the_endpoint_recovers(endpoint):
    host, port = endpoint.address
    flood = [socket.create_connection((host, port), timeout=5) for _ in range(MAX_CLIENTS + 8)]
    try:
        late = flood[-1]
        late.sendall(b"GET /stats HTTP/1.0\r\n\r\n")
        assert late.recv(64).startswith(b"HTTP/1.0 503")  # past the slots: refused at once
        # The silent ones run out of time together; then the endpoint serves again.
        wait_until(lambda: _served(host, port), timeout=DEADLINE + 5, interval=0.2)
    finally:
        for sock in flood:
            sock.close()


def _served(host: str, port: int) -> bool:
    try:
        return "server" in get_stats(host, port)
    except OSError:
        return False
