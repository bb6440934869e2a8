"""Live server counters: bytes in and out, responses by status class, latency, request rate.

Fed by the connection protocol on the hot path, so feeding costs a few integer additions and
one bisect per response; everything derived (rates, percentiles, gauges) is computed when a
snapshot is asked for. Gauges the server already tracks (open connections, requests in
flight) are read from ``ServerState`` rather than counted twice.

Discussion — requests per second. A per-second ring of counters (10 slots) is advanced by
the responses themselves: the rate over the last complete seconds needs no timer thread and
no growing list, and a quiet second reads as zero because its slot is cleared on the way.
"""

from __future__ import annotations

import time
from typing import Any

from treadle.server.observe.histogram import LatencyHistogram

RATE_WINDOW = 10  # seconds of history for requests_per_second
PERCENTILES = (0.5, 0.9, 0.95, 0.99)


class ServerStats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.bytes_in = 0
        self.bytes_out = 0
        self.responses = 0
        self.responses_http2 = 0  # of those, on HTTP/2 streams (the rest on HTTP/1.1)
        self.by_status_class = [0] * 6  # index = status // 100 (1xx..5xx; 0 unused)
        self.latency = LatencyHistogram()
        self._slots = [0] * RATE_WINDOW
        self._second = int(self.started)

    def response_done(self, status: int, seconds: float, now: float) -> None:
        """One response finished ``seconds`` after its request arrived (``now``: monotonic)."""
        self.responses += 1
        self.by_status_class[min(status // 100, 5)] += 1
        self.latency.add(seconds)
        second = int(now)
        if second != self._second:
            self._advance(second)
        self._slots[second % RATE_WINDOW] += 1

    def _advance(self, second: int) -> None:
        """Clear the slots of the seconds that passed without a response."""
        for passed in range(self._second + 1, min(second, self._second + RATE_WINDOW) + 1):
            self._slots[passed % RATE_WINDOW] = 0
        self._second = second

    def requests_per_second(self, now: float | None = None) -> float:
        """Mean over the complete seconds of the window (fewer just after start).

        Read-only, so another thread may call it: a slot counts only if the ring has been
        advanced to or past its second and not yet a whole window beyond it.
        """
        second = int(time.monotonic() if now is None else now)
        seconds = min(RATE_WINDOW - 1, second - int(self.started))
        if seconds <= 0:
            return 0.0
        latest = self._second
        done = 0
        for past in range(second - seconds, second):
            if latest - RATE_WINDOW < past <= latest:
                done += self._slots[past % RATE_WINDOW]
        return done / seconds

    def snapshot(self, state: Any) -> dict[str, Any]:
        """Counters and gauges as plain JSON-ready data; ``state`` is the ``ServerState``."""
        return {
            "uptime_s": time.monotonic() - self.started,
            "connections_open": len(state.connections),
            "requests_total": state.total_requests,
            "requests_in_flight": state.active_requests,
            "requests_per_second": self.requests_per_second(),
            "responses_total": self.responses,
            "responses_http2": self.responses_http2,
            "responses_by_class": {f"{n}xx": self.by_status_class[n] for n in range(1, 6)},
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            **latency_summary(self.latency),
        }


def latency_summary(latency: LatencyHistogram) -> dict[str, Any]:
    """The ``latency_*`` keys of a snapshot, from a histogram (one server's, or merged)."""
    return {
        "latency_ms": {f"p{round(q * 100)}": _ms(latency.percentile(q)) for q in PERCENTILES},
        "latency_mean_ms": latency.total / latency.count * 1000.0 if latency.count else None,
        "latency_count": latency.count,
        "latency_sum_s": latency.total,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0
