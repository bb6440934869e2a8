"""The timer heap: call_at/call_later handles ordered by deadline.

Entries are (when, sequence, handle) tuples so the heap compares floats in C and timers due
at the same instant run in the order they were scheduled. Cancelling a timer only marks it
(O(1)); the dead entry is dropped when it reaches the top. A server cancels almost every
timeout it sets (each request arms one and disarms it), so when cancelled entries become the
majority of a large heap it is rebuilt without them: memory stays bounded by live timers.
"""

from __future__ import annotations

import heapq
import itertools
from asyncio import TimerHandle

# Rebuild once the heap holds more than this many entries and over half are cancelled
# (the same thresholds asyncio uses: small heaps are cheap to leave alone).
_MIN_ENTRIES_TO_COMPACT = 100
_CANCELLED_FRACTION_TO_COMPACT = 0.5


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._sequence = itertools.count()
        self._cancelled = 0

    def __len__(self) -> int:
        """Live (not cancelled) timers."""
        return len(self._heap) - self._cancelled

    def push(self, handle: TimerHandle) -> None:
        heapq.heappush(self._heap, (handle.when(), next(self._sequence), handle))
        handle._scheduled = True

    def cancelled(self, handle: TimerHandle) -> None:
        """Note that a scheduled handle was cancelled; compact if the dead dominate.

        TimerHandle.cancel() calls this *before* it marks the handle cancelled, so `handle`
        itself still looks live here and is dropped by identity.
        """
        self._cancelled += 1
        heap = self._heap
        if len(heap) > _MIN_ENTRIES_TO_COMPACT and self._cancelled > len(heap) * _CANCELLED_FRACTION_TO_COMPACT:
            live = []
            for entry in heap:
                if entry[2]._cancelled or entry[2] is handle:
                    entry[2]._scheduled = False
                else:
                    live.append(entry)
            heapq.heapify(live)
            self._heap = live
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        """When the earliest live timer is due, or None when there is none."""
        heap = self._heap
        while heap and heap[0][2]._cancelled:
            heapq.heappop(heap)[2]._scheduled = False
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def pop_due(self, now: float, ready) -> None:
        """Move every timer due by `now` onto the `ready` queue, in deadline order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            handle = heapq.heappop(heap)[2]
            handle._scheduled = False
            if handle._cancelled:
                self._cancelled -= 1
            else:
                ready.append(handle)

    def clear(self) -> None:
        for entry in self._heap:
            entry[2]._scheduled = False
        self._heap.clear()
        self._cancelled = 0
