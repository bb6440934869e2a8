"""``Inbox``: how worker threads hand work back to the reactor, a batch per wake-up.

``call_soon_threadsafe`` costs a ``Handle`` and a write to the loop's waker socket every
time — a syscall, during which the GIL changes hands. Under load many workers finish
within one reactor pass, so they post into one list instead, and only the post that finds
no drain pending wakes the loop; the reactor then runs the whole batch, in posting order.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

from treadle.server.observe.logging import error_logger


class Inbox:
    __slots__ = ("loop", "_lock", "_items", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._items: list[Callable[[], None]] = []
        self._scheduled = False

    def post(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` in the reactor soon (any thread). RuntimeError if the loop closed."""
        with self._lock:
            self._items.append(callback)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            with self._lock:
                self._scheduled = False
            raise

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for callback in items:
            try:
                callback()
            except Exception as exc:  # one failure must not strand the rest of the batch
                error_logger.critical("Worker hand-off callback %r failed", callback, exc_info=exc)
