"""Wake the reactor from another thread.

A thread that hands the reactor work (call_soon_threadsafe, an executor completion) must
also interrupt the selector if it is blocked in epoll_wait. It does so by making a file
descriptor the selector watches readable: an eventfd where Linux offers one (one fd, a
counter that coalesces any number of wake-ups), a connected socket pair elsewhere.

`wake()` takes no lock: it also runs inside signal handlers (a server's SIGTERM handler calls
call_soon_threadsafe), which Python runs between two bytecodes of whatever the main thread was
doing, possibly another `wake()`; a lock held there would never be released. Another thread may
call `wake()` while the loop's thread closes the loop (a worker reporting its result just as the
loop shuts down: anyio's test_cancelscope_propagation did): `close()` marks the waker closed
before it closes the fd, and a wake-up that finds it closed, or whose write fails because the fd
is gone, does nothing. What is left is the window asyncio's own self-pipe has: a write that
passed the check just as the fd was closed.
"""

from __future__ import annotations

import os
import socket


class Waker:
    """A file descriptor, `fd`, made readable on demand; `wake()` is safe from any thread."""

    def __init__(self) -> None:
        self._eventfd = -1
        self._rsock = self._wsock = None
        self._closed = False
        if hasattr(os, "eventfd"):
            self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.fd = self._eventfd
        else:
            self._rsock, self._wsock = socket.socketpair()
            self._rsock.setblocking(False)
            self._wsock.setblocking(False)
            self.fd = self._rsock.fileno()

    def wake(self) -> None:
        if self._closed:
            return  # the loop is gone: there is no one left to wake
        eventfd = self._eventfd  # read once: close() may reset it meanwhile
        try:
            if eventfd >= 0:
                os.eventfd_write(eventfd, 1)
            elif self._wsock is not None:
                self._wsock.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # a full pipe or a saturated counter: a wake-up is already pending
        except OSError:
            pass  # closed by the loop's thread meanwhile

    def drain(self) -> None:
        """Consume every pending wake-up so the fd stops reporting readable (the loop's thread)."""
        try:
            if self._eventfd >= 0:
                os.eventfd_read(self._eventfd)
            else:
                while self._rsock.recv(4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        self._closed = True  # first, so wake-ups from now on do not touch the fd
        if self._eventfd >= 0:
            eventfd, self._eventfd = self._eventfd, -1
            os.close(eventfd)
        if self._rsock is not None:
            self._rsock.close()
            self._wsock.close()
