"""How to start each server under test, and how to stop it without leaving anything behind.

Every server is a subprocess pinned to one core with ``taskset``, started in its own
session so that it and any workers it forks form one process group we can signal as a
whole; ``stop()`` escalates SIGINT → SIGTERM → SIGKILL with a deadline at each step.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
APPS = {
    "asgi": ("loadtests.apps:asgi", "asgi"),
    "wsgi": ("loadtests.apps:wsgi", "wsgi"),
    "fastapi": ("loadtests.apps_fastapi:app", "asgi"),
    "flask": ("loadtests.apps_flask:app", "wsgi"),
}
# The HTTP/2 connection preface and an empty SETTINGS frame: a server speaking HTTP/2 answers.
H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
IDLE_KEEP_ALIVE = 120  # seconds: idle connections must outlive the memory measurement


def treadle_engines() -> tuple[list[str], str | None]:
    """Treadle's HTTP engines (from ``--http``) and its default one; ([], None) before --http existed."""
    out = subprocess.run([PY, "-m", "treadle", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"^\s+--http \{([\w,]+)\}.*?\(default: (\w+)\)", out, re.S | re.M)
    if match is None:
        return [], None
    return match.group(1).split(","), match.group(2)


@dataclass
class ServerSpec:
    name: str
    interfaces: tuple[str, ...]  # "asgi" and/or "wsgi"
    command: Callable[[str, str, int, bool], list[str]]  # (app ref, interface, port, idle) -> argv
    modules: tuple[str, ...] = ()  # must be importable, else the server is skipped
    # The command serving HTTP/2 with prior knowledge (the h2-* scenarios); None: it cannot.
    h2_command: Callable[[str, str, int, bool], list[str]] | None = None
    unavailable: str | None = None  # filled by check()
    notes: dict[str, str] = field(default_factory=dict)  # per interface: why not supported

    def check(self) -> str | None:
        missing = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if missing:
            self.unavailable = f"not installed ({', '.join(missing)}): pip install '.[bench]'"
        return self.unavailable


def pypy_interpreter(modules: tuple[str, ...] = ("h11",)) -> tuple[str | None, str]:
    """A PyPy that can import ``modules`` (``$TREADLE_BENCH_PYPY``, else ``pypy3`` on PATH):
    by default, one that can run Treadle. None and how to get one otherwise."""
    how = (
        f"no PyPy with {', '.join(modules)}: apt-get install pypy3 pypy3-venv && pypy3 -m venv "
        "/tmp/pypy && /tmp/pypy/bin/pip install -e '.[bench]' uvicorn hypercorn, then "
        "TREADLE_BENCH_PYPY=/tmp/pypy/bin/python"
    )
    candidate = os.environ.get("TREADLE_BENCH_PYPY") or shutil.which("pypy3")
    if not candidate:
        return None, how
    probe_code = "; ".join(f"import {module}" for module in modules)
    try:
        probe = subprocess.run([candidate, "-c", probe_code], cwd=ROOT, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None, how
    return (candidate, "") if probe.returncode == 0 else (None, how)


def _treadle(engine: str | None, python: str = PY) -> Callable[[str, str, int, bool], list[str]]:
    def command(app: str, interface: str, port: int, idle: bool) -> list[str]:
        argv = [python, "-m", "treadle", app, "--host", "127.0.0.1", "--port", str(port), "--interface", interface]
        argv += ["--no-access-log", "--log-level", "warning", "--lifespan", "off"]
        if engine is not None:
            argv += ["--http", engine]
        if idle:
            argv += ["--timeout-keep-alive", str(IDLE_KEEP_ALIVE)]
        return argv

    return command


def _uvicorn(http: str, loop: str, python: str = PY) -> Callable[[str, str, int, bool], list[str]]:
    def command(app: str, interface: str, port: int, idle: bool) -> list[str]:
        argv = [python, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--http", http]
        argv += ["--loop", loop, "--no-access-log", "--log-level", "warning", "--lifespan", "off"]
        if idle:
            argv += ["--timeout-keep-alive", str(IDLE_KEEP_ALIVE)]
        return argv

    return command


def _granian(app: str, interface: str, port: int, idle: bool) -> list[str]:
    argv = [PY, "-m", "granian", "--interface", interface, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--http", "1", "--no-access-log", "--log-level", "warning"]
    if idle:  # granian stops accepting at its backlog (1024) of connections otherwise
        argv += ["--backlog", "20000", "--backpressure", "20000"]
    return argv + [app]


def _granian_h2(app: str, interface: str, port: int, idle: bool) -> list[str]:
    argv = _granian(app, interface, port, idle)
    argv[argv.index("--http") + 1] = "2"
    return argv


def _hypercorn_on(python: str) -> Callable[[str, str, int, bool], list[str]]:
    def command(app: str, interface: str, port: int, idle: bool) -> list[str]:
        argv = [python, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        argv += ["--log-level", "warning"]
        return argv + (["--keep-alive", str(IDLE_KEEP_ALIVE)] if idle else [])

    return command


_hypercorn = _hypercorn_on(PY)


def _waitress(app: str, interface: str, port: int, idle: bool) -> list[str]:
    argv = [PY, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--connection-limit=20000"]
    return argv + ([f"--channel-timeout={IDLE_KEEP_ALIVE}"] if idle else []) + [app]


def _gunicorn(app: str, interface: str, port: int, idle: bool) -> list[str]:
    argv = [PY, "-m", "gunicorn", "-k", "gthread", "--threads", "4", "-w", "1", "-b", f"127.0.0.1:{port}"]
    argv += ["--worker-connections", "20000", "--log-level", "warning"]
    return argv + (["--keep-alive", str(IDLE_KEEP_ALIVE)] if idle else []) + [app]


def all_servers() -> tuple[list[ServerSpec], str]:
    """The servers, Treadle's engines first, and the name of the row ratios are relative to."""
    engines, default = treadle_engines()
    if engines:
        engines.sort(key=lambda e: e != default)  # the default engine first
        servers = [ServerSpec(f"treadle-{e}", ("asgi", "wsgi"), _treadle(e), h2_command=_treadle(e)) for e in engines]
        baseline = f"treadle-{default}"
    else:
        servers, baseline = [ServerSpec("treadle", ("asgi", "wsgi"), _treadle(None))], "treadle"
    pypy, how = pypy_interpreter()
    name = f"treadle-{default}-pypy" if default else "treadle-pypy"
    pypy_command = _treadle(default, pypy or PY)
    unavailable = None if pypy else how
    servers.append(ServerSpec(name, ("asgi", "wsgi"), pypy_command, h2_command=pypy_command, unavailable=unavailable))
    asgi_only = {"wsgi": "ASGI-only server"}
    wsgi_only = {"asgi": "WSGI-only server"}
    servers += [
        ServerSpec("uvicorn-h11", ("asgi",), _uvicorn("h11", "asyncio"), ("uvicorn", "h11"), notes=asgi_only),
        ServerSpec(
            "uvicorn-httptools",
            ("asgi",),
            _uvicorn("httptools", "uvloop"),
            ("uvicorn", "httptools", "uvloop"),
            notes=asgi_only,
        ),
        ServerSpec("granian", ("asgi", "wsgi"), _granian, ("granian",), h2_command=_granian_h2),
        ServerSpec("hypercorn", ("asgi",), _hypercorn, ("hypercorn",), h2_command=_hypercorn, notes=asgi_only),
        ServerSpec("waitress", ("wsgi",), _waitress, ("waitress",), notes=wsgi_only),
        ServerSpec("gunicorn-gthread", ("wsgi",), _gunicorn, ("gunicorn",), notes=wsgi_only),
    ]
    # The pure-Python ASGI servers under PyPy too, so that PyPy is compared with PyPy.
    for name, module, make in (
        ("uvicorn-h11-pypy", "uvicorn", lambda python: _uvicorn("h11", "asyncio", python)),
        ("hypercorn-pypy", "hypercorn", _hypercorn_on),
    ):
        python, how = pypy_interpreter((module, "h11"))
        servers.append(
            ServerSpec(name, ("asgi",), make(python or PY), notes=asgi_only, unavailable=None if python else how)
        )
    for spec in servers:
        spec.check()
    return servers, baseline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A started server: its process group, port and log."""

    live: list[Running] = []  # everything started and not yet stopped, for the emergency stop

    def __init__(self, argv: list[str], port: int, core: str, log: Path) -> None:
        self.port = port
        self.log_path = log
        self.log = open(log, "wb")
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            ["taskset", "-c", core, *argv],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        Running.live.append(self)

    def wait_ready(self, timeout: float = 30.0, http2: bool = False) -> str | None:
        """None once the port answers HTTP/1.1 (or, ``http2``, the HTTP/2 preface); else why not."""
        hello = H2_HELLO if http2 else b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.tail()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(hello)
                    answer = sock.recv(16)
                    if answer.startswith(b"HTTP/1.") or http2 and answer:
                        return None
            except OSError:
                pass
            time.sleep(0.1)
        return f"not answering after {timeout:.0f} s: {self.tail()}"

    def tail(self) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-3:])[-300:]

    def pids(self) -> list[int]:
        """The server and every process it forked (its session), for memory accounting."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == self.proc.pid:  # session id
                    pids.append(int(entry.name))
        return pids

    def cpu_seconds(self) -> float:
        """User plus system CPU time used so far by the server's processes (all their threads)."""
        ticks = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime: stat fields 14 and 15
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    def stop(self) -> None:
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                # the leader is gone; make sure no forked worker outlives it
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
            break
        self.log.close()
        if self in Running.live:
            Running.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for running in list(cls.live):
            running.stop()
