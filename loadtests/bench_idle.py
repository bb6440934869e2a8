"""Memory per idle keep-alive connection: open N connections, make one request on each so
the server has really set it up, then compare the server's RSS with its RSS before."""

from __future__ import annotations

import resource
import socket
import time

from loadtests.bench_servers import Running

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def raise_fd_limit(needed: int) -> int:
    """Raise our open-file limit (servers started after this inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def open_idle(port: int, count: int, deadline: float) -> list[socket.socket]:
    """``count`` connections, each after one complete keep-alive exchange; stops at ``deadline``."""
    socks = []
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(sock)
            sock.sendall(REQUEST)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed by the server")
                data += chunk
    except OSError:
        pass  # report how many were opened; the caller notes the shortfall
    return socks


def still_open(socks: list[socket.socket]) -> int:
    alive = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            while sock.recv(65536):  # the rest of a response body, if any
                pass
        except BlockingIOError:
            alive += 1  # nothing to read and not closed
        except OSError:
            pass
    return alive


def measure(running: Running, port: int, count: int, seconds: float = 60.0) -> tuple[float, int, str]:
    """(KiB per connection, connections alive at the measurement, note)."""
    before = running.rss_kib()
    deadline = time.monotonic() + seconds
    socks = open_idle(port, count, deadline)
    try:
        time.sleep(1.0)  # let the server finish accepting and settle its buffers
        after = running.rss_kib()
        alive = still_open(socks)
    finally:
        for sock in socks:
            sock.close()
    note = "" if alive == count else f"only {alive} of {count} connections open at the measurement"
    return (after - before) / max(alive, 1), alive, note
