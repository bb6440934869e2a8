"""A connection flood up to the server's descriptor limit (docs/reliability.md).

The server runs with ``ulimit -n`` lowered, and the test holds more connections open than it
has descriptors. accept() then fails with EMFILE: the reactor must stop accepting for a
moment rather than spin on a listener that stays readable (reactor/network.py,
``_accept_ready``), keep serving the connections it has, and take new ones again, by
itself, once descriptors are free.
"""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest
from conftest import RawClient, request, wait_until
from prod_support import Proc

FD_LIMIT = 64


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.fixture
def limited_server():
    # The silent flood must outlast the test: its request-head deadline is long.
    command = f"ulimit -n {FD_LIMIT} && exec {sys.executable} -m treadle prod_apps:info --port 0 " \
              "--timeout-request-header 60 --timeout-keep-alive 60 --no-access-log"
    proc = Proc(["sh", "-c", command])
    try:
        yield proc, proc.port()
    finally:
        proc.kill_group()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_accept_backs_off_at_the_fd_limit_serves_on_and_recovers_by_itself(limited_server):
    proc, port = limited_server
    control = RawClient(port)  # connected before the flood: a keep-alive client
    control.send(request())
    assert control.read_response().status == 200
    flood = []
    try:
        for _ in range(FD_LIMIT * 2):  # the backlog takes what the server cannot accept
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        proc.wait_for(r"socket\.accept\(\) out of system resource")
        assert open_fds(proc.pid) >= FD_LIMIT - 1  # the server is out of descriptors
        # Backing off, not spinning: the listener stays readable, yet over a second of
        # nothing else to do the server idles.
        cpu_before = cpu_seconds(proc.pid)
        time.sleep(1.0)  # a measuring window, not a wait
        assert cpu_seconds(proc.pid) - cpu_before < 0.3
        for _ in range(10):
            control.send(request())  # served throughout
            assert control.read_response().status == 200
    finally:
        for sock in flood:
            sock.close()
    # The flood is gone: its descriptors come back, and a new client is accepted again.
    wait_until(lambda: open_fds(proc.pid) < FD_LIMIT / 2, timeout=10)
    started = time.monotonic()
    with RawClient(port) as fresh:
        fresh.send(request())
        assert fresh.read_response().status == 200
    assert time.monotonic() - started < 3.0
    control.send(request())
    assert control.read_response().status == 200
    control.close()
