"""``Budget``: how many of something a peer may do in a while, refilled as time passes.

A token bucket: ``capacity`` tokens, refilled at ``capacity / period`` per second. Each
occurrence spends one; an occurrence that finds the bucket empty is over budget. It bounds a
*rate*, not a total, so a long-lived connection that cancels a stream now and then (a browser
leaving a page) never runs out, while a flood (Rapid Reset: thousands of resets a second) is
over budget within its first ``capacity`` frames.
"""

from __future__ import annotations

from typing import Callable


class Budget:
    __slots__ = ("capacity", "rate", "tokens", "stamp", "clock")

    def __init__(self, capacity: int, period: float, clock: Callable[[], float]) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / period  # tokens per second
        self.tokens = float(capacity)
        self.clock = clock
        self.stamp = clock()

    def spend(self) -> bool:
        """Spend one token; False if there was none left (the caller is over budget)."""
        now = self.clock()
        tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True
