"""Child processes that are always stopped: each in its own session, killed as a group.

A load test starts a server and a Locust (which forks nothing, but the server may: workers,
reload). Whatever happens — a failed start, an exception, Ctrl-C, SIGTERM to the runner —
``stop()`` ends the whole group: SIGTERM (SIGINT for the server, its graceful path), a
grace period, then SIGKILL. Nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Sequence


class Child:
    def __init__(self, argv: Sequence[str], log: Path, cwd: Path | None = None) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,  # its own process group: stop() reaches its children too
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, first_signal: int = signal.SIGTERM, grace: float = 10.0) -> int:
        """Signal the group, wait up to ``grace`` seconds, then SIGKILL it; returns the exit code."""
        try:
            if self.process.poll() is None:
                self._signal_group(first_signal)
                if self.wait(grace) is None:
                    self._signal_group(signal.SIGKILL)
                    self.process.wait()
            # Children the leader left behind (it exited first) still share its group.
            self._signal_group(signal.SIGKILL)
            return self.process.returncode
        finally:
            self._log_file.close()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the group is already gone

    def tail(self, lines: int = 15) -> str:
        """The last lines of the child's output, for error messages."""
        self._log_file.flush()
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_for_port(child: Child, host: str, port: int, timeout: float) -> None:
    """Return once ``host:port`` accepts; raise RuntimeError if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        code = child.exited()
        if code is not None:
            raise RuntimeError(f"the server exited with code {code} before accepting:\n{child.tail()}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not accept on {host}:{port} within {timeout:g} s:\n"
                                   f"{child.tail()}") from None
            time.sleep(0.05)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the child binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
