"""Loop lag: how late the event loop runs a timer that was due, measured by running one.

A loop that spends 80 ms in one callback delays every other callback, timer and read by up
to 80 ms, whatever the request latencies of the moment say (a stuck loop finishes no request
to report). So a probe timer is due every ``INTERVAL``; when it runs, the time past its due
time is the lag. The busy share in the loop counters says how much the loop works; the lag
says how long anything waiting for it waits — what an app's users feel.

The floor is the poll's resolution: epoll takes its timeout in whole milliseconds, rounded
up, so an idle loop reads up to about 1 ms.

Runs on the loop's thread; ``snapshot()`` may be called from any other (it reads a float and
a short deque, which the GIL keeps whole).
"""

from __future__ import annotations

import collections
from typing import Any

INTERVAL = 0.25  # seconds between probes
WINDOW = 40  # probes kept for the maximum: the last 10 seconds


class LagProbe:
    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._due = 0.0
        self._handle: Any = None
        self.last = 0.0  # seconds late, the latest probe
        self.recent: collections.deque[float] = collections.deque(maxlen=WINDOW)

    def start(self) -> None:
        """Arm the first probe (call on the loop's thread, or before it runs)."""
        self._due = self._loop.time() + INTERVAL
        self._handle = self._loop.call_at(self._due, self._probe)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _probe(self) -> None:
        now = self._loop.time()
        self.last = max(0.0, now - self._due)
        self.recent.append(self.last)
        self._due = now + INTERVAL
        self._handle = self._loop.call_at(self._due, self._probe)

    def snapshot(self) -> dict[str, float]:
        recent = tuple(self.recent)
        return {"lag_ms": self.last * 1000.0, "lag_max_ms": max(recent, default=0.0) * 1000.0}
