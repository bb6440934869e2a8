"""A fixed-size latency histogram: constant memory and O(log buckets) per sample.

A server that keeps every latency to compute percentiles grows without bound; one that
keeps a sliding sample loses the tail. Log-spaced buckets keep both the memory fixed and
every percentile within one bucket's width (here 10%) of the truth, which is what a p95
budget needs. Prometheus and HdrHistogram make the same trade.
"""

from __future__ import annotations

import bisect

# Upper bounds in seconds: 50 µs growing by 10% per bucket up to past a minute (~150
# buckets); anything slower lands in the last, unbounded bucket.
_GROWTH = 1.1
_BOUNDS: list[float] = []
_bound = 50e-6
while _bound < 90.0:
    _BOUNDS.append(_bound)
    _bound *= _GROWTH
del _bound


class LatencyHistogram:
    """Counts of durations (seconds) per bucket, plus their count and sum."""

    bounds = tuple(_BOUNDS)

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(_BOUNDS, seconds)] += 1
        self.count += 1
        self.total += seconds

    def percentile(self, fraction: float) -> float | None:
        """The upper bound of the bucket holding the `fraction` quantile (None when empty).

        Reporting the bound, not a guess inside the bucket, errs on the slow side: a p95
        read from here is never better than the real one.
        """
        if not self.count:
            return None
        rank = fraction * self.count
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return _BOUNDS[index] if index < len(_BOUNDS) else float("inf")
        return float("inf")  # pragma: no cover - the loop always reaches the rank
