"""Wake the reactor from another thread.

A thread that hands the reactor work (call_soon_threadsafe, an executor completion) must
also interrupt the selector if it is blocked in epoll_wait. It does so by making a file
descriptor the selector watches readable: an eventfd where Linux offers one (one fd, a
counter that coalesces any number of wake-ups), a connected socket pair elsewhere.

Another thread may call `wake()` while the loop's thread closes the loop (a worker reporting
its result just as the loop shuts down: anyio's test_cancelscope_propagation did). A wake-up
after close must do nothing, and must never write to the eventfd's number after it has been
closed: the kernel may already have handed that number to a new file. So `wake()` and
`close()` share a lock; uncontended, it costs far less than the system call it guards.
"""

from __future__ import annotations

import os
import socket
import threading


class Waker:
    """A file descriptor, `fd`, made readable on demand; `wake()` is safe from any thread."""

    def __init__(self) -> None:
        self._eventfd = -1
        self._rsock = self._wsock = None
        self._lock = threading.Lock()
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
        with self._lock:
            if self._closed:
                return  # the loop is gone: there is no one left to wake
            # A full pipe or a saturated counter means a wake-up is already pending: nothing is lost.
            try:
                if self._eventfd >= 0:
                    os.eventfd_write(self._eventfd, 1)
                else:
                    self._wsock.send(b"\0")
            except (BlockingIOError, InterruptedError):
                pass

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
        with self._lock:
            self._closed = True
            if self._eventfd >= 0:
                os.close(self._eventfd)
                self._eventfd = -1
            if self._rsock is not None:
                self._rsock.close()
                self._wsock.close()
