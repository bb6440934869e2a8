"""Helpers for the production tests: a server (or gunicorn) in its own process group, its
output read line by line, waits on log lines and ports with deadlines, and a teardown that
leaves no process behind (the whole group is killed).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import httpx

TESTS = Path(__file__).parent
ROOT = TESTS.parent


class Proc:
    """A child process in a new session (so its workers can be killed as a group)."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path = TESTS,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        path_first: Sequence[str] = (),
    ) -> None:
        """``path_first``: directories put on PYTHONPATH before the project's own."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
        python_path = os.pathsep.join([*path_first, str(ROOT), str(TESTS)])
        full_env.update(PYTHONPATH=python_path, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    @classmethod
    def treadle(cls, *args: str, **kwargs: Any) -> Proc:
        return cls([sys.executable, "-m", "treadle", *args], **kwargs)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 15.0, after: int = 0) -> re.Match:
        """The first line (from index ``after`` of all lines seen) matching ``pattern``."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            while index < len(self.seen):
                match = re.search(pattern, self.seen[index])
                index += 1
                if match:
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen in {timeout} s; output:\n" + self.output())
            try:
                self.seen.append(self.lines.get(timeout=min(remaining, 0.2)))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    self._pump_thread.join(1.0)  # it hands over the last lines, then ends at EOF
                    if self.lines.empty():
                        raise AssertionError(f"{pattern!r} not seen; exited {self.proc.returncode}:\n{self.output()}")

    def count(self, pattern: str) -> int:
        self.drain()
        return sum(1 for line in self.seen if re.search(pattern, line))

    def drain(self) -> None:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return

    def port(self) -> int:
        return int(self.wait_for(r"running on https?://[\d.]+:(\d+)").group(1))

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 15.0) -> int:
        """Wait for exit; then every line the process wrote is in ``seen``."""
        code = self.proc.wait(timeout)
        self._pump_thread.join(5.0)  # ends at EOF, once every holder of the pipe has gone
        self.drain()
        return code

    def output(self) -> str:
        self.drain()
        return "\n".join(self.seen)

    def kill_group(self) -> None:
        """Kill the child and everything it started (workers), then reap the child."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not deliver SIGKILL
            pass


READY = r"Worker \[(\d+)\] ready"


def ready_pids(proc: Proc, count: int, after: int = 0) -> list[int]:
    """The pids of the next ``count`` workers a supervisor reports ready, from line ``after`` on."""
    pids = []
    while len(pids) < count:
        match = proc.wait_for(READY, after=after)
        pids.append(int(match.group(1)))
        after = proc.seen.index(match.string) + 1
    return pids


def get_json(url: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.get(url, timeout=5.0, **kwargs)
    assert response.status_code == 200, response.text
    return json.loads(response.text)

