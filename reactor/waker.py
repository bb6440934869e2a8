"""Wake the reactor from another thread.

A thread that hands the reactor work (call_soon_threadsafe, an executor completion) must
also interrupt the selector if it is blocked in epoll_wait. It does so by making a file
descriptor the selector watches readable: an eventfd where Linux offers one (one fd, a
counter that coalesces any number of wake-ups), a connected socket pair elsewhere.
"""

from __future__ import annotations

import os
import socket


class Waker:
    """A file descriptor, `fd`, made readable on demand; `wake()` is safe from any thread."""

    def __init__(self) -> None:
        self._eventfd = -1
        self._rsock = self._wsock = None
        if hasattr(os, "eventfd"):
            self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.fd = self._eventfd
        else:
            self._rsock, self._wsock = socket.socketpair()
            self._rsock.setblocking(False)
            self._wsock.setblocking(False)
            self.fd = self._rsock.fileno()

    def wake(self) -> None:
        # A full pipe or a saturated counter means a wake-up is already pending: nothing is lost.
        try:
            if self._eventfd >= 0:
                os.eventfd_write(self._eventfd, 1)
            else:
                self._wsock.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            # Closed under us while the loop shuts down; there is no one left to wake.
            pass

    def drain(self) -> None:
        """Consume every pending wake-up so the fd stops reporting readable."""
        try:
            if self._eventfd >= 0:
                os.eventfd_read(self._eventfd)
            else:
                while self._rsock.recv(4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        if self._eventfd >= 0:
            os.close(self._eventfd)
            self._eventfd = -1
        if self._rsock is not None:
            self._rsock.close()
            self._wsock.close()
