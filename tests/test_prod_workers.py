"""The supervisor (--workers, --limit-max-requests): workers share the socket, a dead worker
is replaced, SIGHUP reloads without refusing a request, SIGTERM lets requests finish."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import httpx
import pytest
from conftest import RawClient, request, wait_until
from prod_apps import info
from prod_support import READY, Proc, get_json, ready_pids

from treadle.server import Config, Server


def start(*args: str, env: dict[str, str] | None = None) -> tuple[Proc, int, set[int]]:
    """A supervisor with ``--workers`` as given; returns it, the port and the ready workers' pids."""
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--timeout-graceful-shutdown", "5", *args, env=env)
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    port = proc.port()
    return proc, port, set(ready_pids(proc, workers))


def served_by(port: int) -> int:
    # A new connection each time, so every request is a fresh accept() the workers compete for.
    with httpx.Client(timeout=5.0) as client:
        return client.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}).json()["pid"]


def test_two_workers_serve(procs):
    proc, port, pids = start("--workers", "2")
    procs.append(proc)
    assert len(pids) == 2 and proc.pid not in pids
    seen: set[int] = set()
    deadline = time.monotonic() + 10
    while seen != pids and time.monotonic() < deadline:
        seen.add(served_by(port))
    assert seen == pids


def test_killed_worker_is_replaced(procs):
    proc, port, pids = start("--workers", "2")
    procs.append(proc)
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    proc.wait_for(rf"Worker \[{victim}\] exited \(killed by SIGKILL\); starting a new one")
    mark = len(proc.seen)
    new = int(proc.wait_for(READY, after=mark).group(1))
    assert new not in pids
    survivors = (pids - {victim}) | {new}
    seen: set[int] = set()
    deadline = time.monotonic() + 10
    while seen != survivors and time.monotonic() < deadline:
        seen.add(served_by(port))
    assert seen == survivors


def test_sighup_reload_under_load_loses_no_request(procs):
    proc, port, old = start("--workers", "2")
    procs.append(proc)
    results: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                results.append(served_by(port))
            except BaseException as exc:  # any refused or broken request fails the test
                failures.append(exc)

    clients = [threading.Thread(target=load) for _ in range(2)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: len(results) >= 20, timeout=10)  # load is flowing before the reload
        proc.signal(signal.SIGHUP)
        complete = proc.wait_for(r"Reload complete: 2 new worker\(s\) serving", timeout=20).string
        for pid in old:
            stopped = proc.wait_for(rf"Worker \[{pid}\] stopped \(exit status 0\)", timeout=20).string
            assert proc.seen.index(complete) < proc.seen.index(stopped)  # new ones serve first
        after_reload = len(results)
        wait_until(lambda: len(results) >= after_reload + 20, timeout=10)  # and from the new workers
    finally:
        stop.set()
        for client in clients:
            client.join(10)
    assert failures == []
    # Each client may have had one response from an old worker in hand while the reload ended.
    late = results[after_reload + len(clients) :]
    assert not old & set(late), (old, late)


def test_sigterm_lets_requests_in_flight_finish(procs):
    proc, port, pids = start("--workers", "2")
    procs.append(proc)
    responses: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: responses.append(httpx.get(f"http://127.0.0.1:{port}/?sleep=1", timeout=10))
    )
    request.start()
    proc.wait_for(r"entered \d+")
    proc.signal(signal.SIGTERM)
    request.join(10)
    assert responses and responses[0].status_code == 200
    assert proc.finish() == 0
    for pid in pids:
        assert f"Worker [{pid}] stopped (exit status 0)" in proc.output()


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["single", "supervisor"])
def test_sigint_stops_a_server_started_with_sigint_ignored(procs, workers):
    # A script's `treadle app:app &` starts it so: sh ignores SIGINT in background commands.
    command = [sys.executable, "-m", "treadle", "prod_apps:info", "--port", "0", *workers]
    proc = Proc(["sh", "-c", "trap '' INT; exec \"$@\"", "sh", *command])
    procs.append(proc)
    proc.port()
    if workers:
        proc.wait_for(READY, after=proc.seen.index(proc.wait_for(READY).string) + 1)  # both of them
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl+C: the whole process group
    assert proc.finish() == 0
    output = proc.output()
    assert "Finished server process." in output
    if workers:  # the supervisor took it; its workers kept ignoring SIGINT and were sent SIGTERM
        assert "Received SIGINT; stopping workers gracefully." in output
        assert output.count("Received SIGTERM; shutting down gracefully.") == 2
        assert "Received SIGINT; shutting down" not in output
    else:
        assert "Received SIGINT; shutting down gracefully." in output


def refused(port: int) -> bool:
    """Whether a new connection to ``port`` is refused (one that is accepted is closed at once)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_shutdown_refuses_new_connections_while_requests_in_flight_finish(procs, tmp_path):
    # Nothing may hold the listening socket open through shutdown: a connection queued there
    # would be reset when the last holder closes it, instead of refused for the client to retry.
    proc, port, pids = start("--workers", "2")
    procs.append(proc)
    release = tmp_path / "release"
    responses: list[httpx.Response] = []
    url = f"http://127.0.0.1:{port}/?until={release}"
    slow = threading.Thread(target=lambda: responses.append(httpx.get(url, timeout=20)))
    slow.start()
    try:
        proc.wait_for(r"entered \d+")
        proc.signal(signal.SIGTERM)
        wait_until(lambda: refused(port), timeout=10)
        assert all(refused(port) for _ in range(3))  # refused from then on, not queued
        assert slow.is_alive()  # while the slow request is still in flight
    finally:
        release.touch()
        slow.join(20)
    assert responses and responses[0].status_code == 200
    assert proc.finish() == 0


def test_limit_max_requests_recycles_the_worker(procs):
    proc, port, pids = start("--workers", "1", "--limit-max-requests", "3")
    procs.append(proc)
    first = served_by(port)
    assert served_by(port) == first
    slow: list[httpx.Response] = []
    third = threading.Thread(target=lambda: slow.append(httpx.get(f"http://127.0.0.1:{port}/?sleep=3", timeout=10)))
    third.start()
    proc.wait_for(r"Served 3 requests \(--limit-max-requests\)")
    proc.wait_for(rf"Worker \[{first}\] is retiring; starting a new one")
    # The replacement serves while the retiring worker is still finishing its slow request.
    assert served_by(port) != first
    assert not slow
    third.join(10)
    assert slow and slow[0].status_code == 200
    proc.wait_for(rf"Worker \[{first}\] stopped \(exit status 0\)")


def test_limit_max_requests_alone_runs_under_the_supervisor(procs):
    proc, port, pids = start("--limit-max-requests", "2")
    procs.append(proc)
    assert proc.pid not in pids
    assert get_json(f"http://127.0.0.1:{port}/")["pid"] in pids


def test_worker_that_cannot_start_stops_the_supervisor():
    proc = Proc.treadle("prod_apps:broken_startup", "--port", "0", "--workers", "2", "--lifespan", "on")
    try:
        assert proc.finish(20) == 3
        assert "failed to start (exit status 3)" in proc.output()
    finally:
        proc.kill_group()


def test_second_signal_kills_workers_that_are_stuck(procs):
    proc, port, pids = start("--workers", "2")
    procs.append(proc)
    url = f"http://127.0.0.1:{port}/?block=60"
    stuck = threading.Thread(target=lambda: pytest.raises(httpx.HTTPError, httpx.get, url, timeout=20))
    stuck.start()
    blocked = int(proc.wait_for(r"blocking (\d+)").group(1))  # that worker's event loop cannot shut down
    proc.signal(signal.SIGTERM)
    (other,) = pids - {blocked}
    proc.wait_for(rf"Worker \[{other}\] stopped \(exit status 0\)")
    proc.signal(signal.SIGTERM)
    proc.wait_for(r"Received SIGTERM again; killing workers")
    assert proc.finish() == 0
    assert f"Worker [{blocked}] stopped (killed by SIGKILL)" in proc.output()
    stuck.join(10)


def process_gone(pid: int) -> bool:
    """Exited (a zombie waiting for whoever adopted it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_workers_shut_down_when_the_supervisor_is_killed(procs):
    proc, port, pids = start("--workers", "2")
    procs.append(proc)
    proc.signal(signal.SIGKILL)
    gone = r"The supervisor is gone; shutting down\."
    proc.wait_for(gone, after=proc.seen.index(proc.wait_for(gone).string) + 1)  # from both workers
    deadline = time.monotonic() + 10
    while not all(process_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.05)


def test_a_second_sighup_restarts_the_reload(procs):
    proc, port, old = start("--workers", "2", env={"TEST_STARTUP_DELAY": "1"})
    procs.append(proc)
    mark = len(proc.seen)
    proc.signal(signal.SIGHUP)
    proc.wait_for(r"Received SIGHUP", after=mark)  # the first reload is under way, for a second
    mark = len(proc.seen)
    proc.signal(signal.SIGHUP)
    proc.wait_for(r"Abandoning the reload in progress for a new one\.", after=mark)
    proc.wait_for(r"Reload complete: 2 new worker\(s\) serving")
    for pid in old:
        proc.wait_for(rf"Worker \[{pid}\] stopped \(exit status 0\)")
    assert served_by(port) not in old
    assert proc.count(r"Reload complete") == 1


def test_shutdown_serves_a_connection_accepted_before_its_request_arrived(serve):
    # The race a reload under load hits: the client is connected (accepted by a worker that
    # is told to stop a moment later) and its request is still on the way.
    running = serve(info)
    with RawClient(running.port) as client:
        wait_until(lambda: len(running.state.connections) == 1)
        running.server.request_shutdown()
        wait_until(lambda: running.state.closing)
        client.send(request("GET", "/late"))
        response = client.read_response()
        assert response.status == 200
        assert response.header(b"connection") == b"close"
    running.server.join(5)
    assert not running.server.running


def test_shutdown_closes_a_silent_new_connection_after_a_grace(serve):
    running = serve(info)
    with RawClient(running.port) as client:
        wait_until(lambda: len(running.state.connections) == 1)
        started = time.monotonic()
        running.server.request_shutdown()
        assert client.is_closed(timeout=5)
        assert 0.5 < time.monotonic() - started < 3.0


def test_server_run_with_workers_from_python(procs):
    code = "import server; server.run('prod_apps:info', port=0, workers=2)"
    proc = Proc([sys.executable, "-c", code])
    procs.append(proc)
    port = proc.port()
    proc.wait_for(READY)
    assert get_json(f"http://127.0.0.1:{port}/")["pid"] != proc.pid
    proc.signal(signal.SIGTERM)
    assert proc.finish() == 0


def test_a_shutdown_requested_during_start_up_is_not_lost():
    # A supervisor's SIGTERM can reach a worker that is still importing its app.
    server = Server(Config(info, port=0, lifespan="off"))
    server.request_shutdown()  # before the loop even exists
    server.start()
    server.join(5)
    assert not server.running
