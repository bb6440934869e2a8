"""Learn when a child process exits, reap it, and signal it without hitting a stranger.

Two ways, best first:

* **pidfd** (Linux >= 5.3, Python >= 3.9): `os.pidfd_open(pid)` gives a file descriptor that
  becomes readable when the child exits. The selector watches it like a socket: no thread,
  no SIGCHLD handler.
* **a thread per child** elsewhere: it blocks in the wait call and hands the exit status
  to the loop with `call_soon_threadsafe`.

Reaping is what frees a pid for reuse, so a signal is safe only if the child cannot be
reaped between "is it still running?" and kill(). Signals go through the `Popen` object
(as in asyncio), whose send_signal() polls first and signals only a child not yet reaped:

* with a pidfd, reaping happens in the loop's thread, the thread that signals, so nothing
  can reap in between;
* the thread watcher first waits *without* reaping (`waitid(WNOWAIT)`), then reaps under a
  lock that `signal()` also takes. (Where waitid is missing it falls back to a plain blocking
  waitpid, and keeps the narrow race asyncio has.)

A global SIGCHLD handler is avoided on purpose: it would fight any other library's
handler, and `waitpid(-1)` would steal the exit status of children that are not ours.

Whichever watcher reaps, it records the status in `Popen.returncode`, so the `Popen` object
never waits for the child again nor complains that it is "still running". If something else
reaped the child first (a `Popen.poll()` from send_signal, or from user code), the status
Popen recorded is used.
"""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Callable

# The status of a child someone else reaped (a Popen.poll() behind our back) is lost for
# good; report what asyncio reports in that case.
UNKNOWN_RETURNCODE = 255


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None where the OS or Python cannot make one."""
    if not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        # ENOSYS (kernel < 5.3), EMFILE... the thread watcher still works.
        return None


def _reap(proc: subprocess.Popen, block: bool) -> int | None:
    """waitpid the child; its exit code (negative for a signal), or None if still running."""
    try:
        pid, status = os.waitpid(proc.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        returncode = proc.returncode if proc.returncode is not None else UNKNOWN_RETURNCODE
        if proc.returncode is None:
            proc.returncode = returncode
        return returncode
    if pid == 0:
        return None
    returncode = os.waitstatus_to_exitcode(status)
    proc.returncode = returncode  # ours is the authoritative status: we reaped it
    return returncode


class ChildWatch:
    """Watches one child; calls `on_exit(returncode)` in the loop once it is reaped."""

    def __init__(self, loop, proc: subprocess.Popen, on_exit: Callable[[int], None]) -> None:
        self._loop = loop
        self._proc = proc
        self._on_exit = on_exit
        self.returncode: int | None = None

    def signal(self, send: Callable[[], None]) -> None:
        """Call `send` (one of the Popen's signalling methods) unless the child may be reaped meanwhile."""
        raise NotImplementedError

    def detach(self) -> None:
        """The loop is closing: stop reporting, but make sure the child is still reaped."""
        raise NotImplementedError


class PidfdWatch(ChildWatch):
    def __init__(self, loop, proc: subprocess.Popen, on_exit: Callable[[int], None], pidfd: int) -> None:
        super().__init__(loop, proc, on_exit)
        self._pidfd: int | None = pidfd
        loop._add_reader(pidfd, self._exited)

    def _exited(self) -> None:
        returncode = _reap(self._proc, block=False)
        if returncode is None:
            return  # not reapable yet (cannot happen once the pidfd is readable, but be safe)
        self.returncode = returncode
        self._close_pidfd()
        self._on_exit(returncode)

    def _close_pidfd(self) -> None:
        if self._pidfd is None:
            return
        # Unregister before closing: a closed fd still in the selector is the stale-fd hazard.
        self._loop._remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    def signal(self, send: Callable[[], None]) -> None:
        # Only the loop's thread reaps (in _exited), and it is the thread running this.
        send()

    def detach(self) -> None:
        if self._pidfd is None:
            return
        self._loop._remove_reader(self._pidfd)
        pidfd, self._pidfd = self._pidfd, None

        def reap_then_close() -> None:
            _reap(self._proc, block=True)
            os.close(pidfd)

        threading.Thread(target=reap_then_close, name=f"reactor-reap-{self._proc.pid}", daemon=True).start()


class ThreadWatch(ChildWatch):
    def __init__(self, loop, proc: subprocess.Popen, on_exit: Callable[[int], None]) -> None:
        super().__init__(loop, proc, on_exit)
        self._reap_lock = threading.Lock()
        self._detached = False
        self._thread = threading.Thread(target=self._wait, name=f"reactor-waitpid-{proc.pid}", daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        """Runs in the watcher thread."""
        if hasattr(os, "waitid"):
            try:
                os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass  # already reaped by someone else: _reap reports it
            with self._reap_lock:
                # The child has exited, so this wait returns at once.
                self.returncode = _reap(self._proc, block=True)
        else:
            # No way to wait without reaping: never hold the lock across a blocking wait.
            returncode = _reap(self._proc, block=True)
            with self._reap_lock:
                self.returncode = returncode
        if self._detached:
            return
        try:
            self._loop.call_soon_threadsafe(self._on_exit, self.returncode)
        except RuntimeError:
            pass  # the loop closed meanwhile: the child is reaped, no one is left to tell

    def signal(self, send: Callable[[], None]) -> None:
        with self._reap_lock:
            send()  # Popen polls first: a no-op if the child already exited

    def detach(self) -> None:
        # The thread keeps waiting and reaps the child; it just won't call into a closed loop.
        self._detached = True


def watch_child(loop, proc: subprocess.Popen, on_exit: Callable[[int], None]) -> ChildWatch:
    """Start watching `proc`: a pidfd where available, else a thread."""
    pidfd = _open_pidfd(proc.pid)
    if pidfd is not None:
        return PidfdWatch(loop, proc, on_exit, pidfd)
    return ThreadWatch(loop, proc, on_exit)
