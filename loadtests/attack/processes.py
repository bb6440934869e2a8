"""Faults of processes: ``--workers 2`` under continuous load, then a worker killed with
SIGKILL, a SIGHUP reload, a SIGTERM.

The load is wrk (keep-alive connections, as real clients use), whose report counts socket
errors and non-2xx answers; for SIGTERM, keep-alive clients of our own that tell a response
cut in the middle from a connection closed between two.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target, _processes, wait_for

WORKERS = ["--workers", "2", "--timeout-graceful-shutdown", "10"]


@dataclass
class WrkReport:
    requests: int
    socket_errors: int
    non_2xx: int
    text: str

    @classmethod
    def parse(cls, out: str) -> WrkReport:
        done = re.search(r"(\d+) requests in", out)
        errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return cls(int(done.group(1)) if done else 0, errors, int(non_2xx.group(1)) if non_2xx else 0, out)

    def __str__(self) -> str:
        return f"wrk: {self.requests:,} requests, {self.socket_errors} socket errors, {self.non_2xx} non-2xx"


class Wrk(threading.Thread):
    """wrk against the target for ``seconds``, in the background."""

    def __init__(self, target: Target, seconds: int, connections: int = 50, path: str = "/") -> None:
        super().__init__(daemon=True)
        self.argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                     f"http://{target.host}:{target.port}{path}"]
        self.seconds = seconds
        self.report: WrkReport | None = None

    def run(self) -> None:
        done = subprocess.run(self.argv, capture_output=True, text=True, timeout=self.seconds + 60)
        self.report = WrkReport.parse(done.stdout + done.stderr)


def _workers(target: Target) -> list[int]:
    return [pid for pid in _processes(target.pid) if pid != target.pid] if target.pid else []


def _sockets(pid: int) -> set[str]:
    """The inodes of the sockets ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def _established(pid: int, port: int, remote: bool = False) -> list[int]:
    """The TCP connections ``pid`` holds whose local port (``remote``: whose peer's port) is
    ``port``, each given by its other end's port."""
    inodes = _sockets(pid)
    found = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, peer = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            here, there = (peer, local) if remote else (local, peer)
            if here == port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                found.append(there)
    return found


def _ready(target: Target, count: int, after: int = 0) -> bool:
    return len(re.findall(r"Worker \[\d+\] ready", target.log()[after:])) >= count


def _missing_wrk() -> Outcome | None:
    if shutil.which("wrk") is None:
        return Outcome(0, "skipped: wrk is not installed (apt-get install wrk)", True)
    return None


def _under_load(target: Target, seconds: int) -> Wrk:
    """wrk running against both workers, a third of the way into its ``seconds``."""
    wait_for(lambda: _ready(target, 2), 20)
    wrk = Wrk(target, seconds)
    wrk.start()
    time.sleep(seconds / 3)
    return wrk


def kill_a_worker(target: Target, quick: bool) -> Outcome:
    if (skipped := _missing_wrk()) is not None:
        return skipped
    seconds = 4 if quick else 15
    wrk = _under_load(target, seconds)
    victim = max(_workers(target), key=lambda pid: len(_established(pid, target.port)))  # the busiest
    held_by_victim = _established(victim, target.port)
    control = target.control.process.pid if target.control is not None else None
    control_ports = set(_established(control, target.port, remote=True)) if control else set()
    of_wrk = [port for port in held_by_victim if port not in control_ports]
    mark = len(target.log())
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: _ready(target, 1, mark), 20)
    replaced_in = time.monotonic() - killed_at
    wrk.join(seconds + 70)
    report = wrk.report
    # The killed worker's own connections are reset with it: those, and only those, may fail
    # (the kernel gives each new connection to whichever worker accepts first, so one worker
    # may hold most of them).
    whose = f"{len(of_wrk)} of wrk's 50 connections"
    if len(held_by_victim) > len(of_wrk):
        whose += " and the control client's (which may see a request fail, then reconnects)"
    did = (f"a worker holding {whose} killed; a new one ready {replaced_in:.1f} s later"
           if replaced else "worker not replaced")
    did += f"; {report}" if report else "; wrk gave no report"
    if report is not None and report.socket_errors:
        did += f" (the killed worker's {len(of_wrk)} connections reset with it: wrk reconnected and went on)"
    held = replaced and report is not None and report.non_2xx == 0 and report.socket_errors <= len(of_wrk)
    return Outcome(50, did, held)


def reload_under_load(target: Target, quick: bool) -> Outcome:
    if (skipped := _missing_wrk()) is not None:
        return skipped
    seconds = 5 if quick else 20
    wrk = _under_load(target, seconds)
    mark = len(target.log())
    os.kill(target.pid, signal.SIGHUP)
    reloaded = wait_for(lambda: "Reload complete" in target.log()[mark:], 30)
    wrk.join(seconds + 70)
    report = wrk.report
    did = ("reloaded" if reloaded else "reload did not complete") + (f"; {report}" if report else "; no wrk report")
    held = reloaded and report is not None and report.socket_errors == 0 and report.non_2xx == 0
    return Outcome(50, did, held)


@dataclass
class Tally:
    complete: int = 0  # full responses
    cut: int = 0  # a response started and not finished: must never happen
    unanswered: int = 0  # a request sent, the connection closed before any of its answer
    closed_after_response: int = 0  # "Connection: close" honoured: the right way to end
    refused: int = 0  # new connections once the server stopped listening


def _client(host: str, port: int, stop: threading.Event, tally: Tally, lock: threading.Lock) -> None:
    """Keep-alive GET /sleep?ms=200 over and over, until the server is gone or ``stop``."""
    request = b"GET /sleep?ms=200 HTTP/1.1\r\nHost: attack\r\n\r\n"
    while not stop.is_set():
        try:
            sock = socket.create_connection((host, port), timeout=15)
        except OSError:
            with lock:
                tally.refused += 1
            return
        with sock:
            buffer = b""
            while not stop.is_set():
                try:
                    sock.sendall(request)
                except OSError:
                    with lock:
                        tally.unanswered += 1
                    break
                response, buffer, outcome = _read_response(sock, buffer)
                with lock:
                    setattr(tally, outcome, getattr(tally, outcome) + 1)
                if outcome != "complete":
                    break
                if b"connection: close" in response.lower():
                    with lock:
                        tally.closed_after_response += 1
                    break


def _read_response(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes, str]:
    """(the response, what followed it, "complete" | "cut" | "unanswered")."""
    try:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return buffer, b"", "cut" if buffer else "unanswered"
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return buffer, b"", "cut"
            rest += chunk
    except OSError:
        return buffer, b"", "cut" if buffer else "unanswered"
    return head, rest[length:], "complete"


def terminate_under_load(target: Target, quick: bool) -> Outcome:
    count = 10 if quick else 50
    wait_for(lambda: _ready(target, 2), 20)
    tally, lock, stop = Tally(), threading.Lock(), threading.Event()
    clients = [threading.Thread(target=_client, args=(target.host, target.port, stop, tally, lock), daemon=True)
               for _ in range(count)]
    for client in clients:
        client.start()
    wait_for(lambda: tally.complete >= count * 3, 20)
    if target.control is not None:
        target.control.finish()  # what it would see next is the server going away
    started = time.monotonic()
    os.kill(target.pid, signal.SIGTERM)
    exited = target.child.wait(30) if target.child is not None else None
    took = time.monotonic() - started
    stop.set()
    for client in clients:
        client.join(20)
    how = "did not exit" if exited is None else f"exited with {exited}"
    did = (f"SIGTERM with {count} keep-alive clients busy: {how} in {took:.1f} s; "
           f"{tally.complete} complete responses, {tally.cut} cut mid-response, "
           f"{tally.unanswered} requests unanswered, {tally.closed_after_response} connections closed after a "
           f"response (Connection: close), then {tally.refused} refused")
    return Outcome(count, did, exited == 0 and tally.cut == 0 and tally.unanswered == 0)


ATTACKS = [
    Attack("--workers 2 under wrk: a worker killed (SIGKILL)", "processes", kill_a_worker,
           lambda quick: WORKERS, time_limit=120, needs_url=True),
    Attack("--workers 2 under wrk: SIGHUP reload", "processes", reload_under_load,
           lambda quick: WORKERS, time_limit=120, needs_url=True),
    Attack("--workers 2 under load: SIGTERM", "processes", terminate_under_load,
           lambda quick: WORKERS, time_limit=120, needs_url=True),
]
