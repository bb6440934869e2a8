"""The server under attack, how it is measured, and the control client beside it.

``Target.start`` runs ``python -m treadle loadtests.attack.apps:app`` on 127.0.0.1 (with the
WSGI faults mounted at ``/wsgi``, and the attack's own flags) in a session of its own, so
``stop()`` ends it and anything it forked, whatever happens; ``Target.external`` aims at a
server given by ``--url`` instead (its memory and descriptors are read only if ``--pid``
says whose they are). A ``Sample`` is the server's resident memory and open descriptors,
read from /proc, summed over its processes (a supervisor and its workers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from loadtests.processes import Child, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT = 20.0
APP = "loadtests.attack.apps:app"
MOUNT = "/wsgi=loadtests.attack.apps:wsgi"


@dataclass
class Sample:
    rss_kib: int | None
    fds: int | None

    def __str__(self) -> str:
        rss = "?" if self.rss_kib is None else f"{self.rss_kib / 1024:.1f}"
        return f"{rss} MiB, {'?' if self.fds is None else self.fds} fds"


def _processes(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor's workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def sample(pid: int | None) -> Sample:
    if pid is None or not os.path.isdir(f"/proc/{pid}"):
        return Sample(None, None)
    rss = fds = 0
    for process in _processes(pid):
        try:
            with open(f"/proc/{process}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{process}/fd"))
        except OSError:
            continue  # it exited meanwhile
    return Sample(rss, fds)


class Target:
    """Where the attacks go: host, port, the stats port, and the server's pid if known."""

    def __init__(self, host: str, port: int, pid: int | None, child: Child | None = None,
                 stats_port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.pid = pid
        self.child = child
        self.stats_port = stats_port
        self.control: Control | None = None  # the control client beside it (run.py)

    @classmethod
    def start(cls, flags: Sequence[str] = (), fd_limit: int | None = None, log_dir: Path | None = None,
              stats: bool = False) -> Target:
        port = free_port()
        stats_port = free_port() if stats else None
        argv = [sys.executable, "-m", "treadle", APP, "--mount", MOUNT, "--host", "127.0.0.1",
                "--port", str(port), "--no-access-log", *flags]
        if stats_port is not None:
            argv += ["--stats-port", str(stats_port)]
        if fd_limit is not None:
            argv = ["sh", "-c", f'ulimit -n {fd_limit} && exec "$@"', "sh", *argv]
        log = Path(log_dir or tempfile.gettempdir()) / f"treadle-attack-{port}.log"
        child = Child(argv, log, cwd=ROOT)
        try:
            wait_for_port(child, "127.0.0.1", port, START_TIMEOUT)
        except BaseException:
            child.stop(signal.SIGKILL, 0)
            raise
        return cls("127.0.0.1", port, child.pid, child, stats_port)

    @classmethod
    def external(cls, host: str, port: int, pid: int | None) -> Target:
        return cls(host, port, pid)

    def sample(self) -> Sample:
        return sample(self.pid)

    def log(self) -> str:
        return "" if self.child is None else self.child.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server (after the control client, whose figures are of the attack, not
        of the shutdown)."""
        if self.control is not None:
            self.control.finish()
        if self.child is not None:
            self.child.stop(signal.SIGTERM, grace=15.0)


class Control:
    """The control client's process (loadtests/attack/control.py), started and read back."""

    def __init__(self, target: Target, seconds: float) -> None:
        argv = [sys.executable, "-m", "loadtests.attack.control", target.host, str(target.port),
                "--seconds", str(seconds)]
        self.process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, start_new_session=True)
        self.result: dict | None = None
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "ready" after its first answer, or EOF if it died
        if line.strip() != "ready":
            self.finish()
            raise RuntimeError("the control client got no answer from the server")

    def finish(self) -> dict:
        """Stop it (the first call) and return what it measured."""
        if self.result is None:
            try:
                out, _ = self.process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, _ = self.process.communicate()
            try:
                self.result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self.result = {"requests": 0, "errors": {"control client failed": 1}, "p99_ms": None}
        return self.result


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` passes; returns whether it came true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
