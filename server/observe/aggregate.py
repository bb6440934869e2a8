"""One view of several workers: a supervisor's ``/stats``, merged from its workers' reports.

Each worker reports its ``Observer.report()`` (its snapshot plus its latency histogram) to
the supervisor about once a second; ``combine`` makes of the latest reports one snapshot
with the keys a single server's has, so a dashboard or a scraper cannot tell the two apart,
plus a ``workers`` list (each worker's own numbers) and a ``supervisor`` section.

How each number merges is declared once, below: counters and gauges add up; the loop's
worst lag and its busiest poll are the maximum; ratios are recomputed from the merged
counts; percentiles come from the merged histogram, never from averaging percentiles
(the mean of two p99s is the p99 of nothing).

Counters must not go backwards when a worker exits (Prometheus would read a reset, and a
total of requests served would shrink), so ``Departed`` keeps the last-reported counters
of every worker that is gone and adds them in. What a worker served after its last report
is lost with it: at most a second's worth, or less, since a worker reports once more as it
stops.
"""

from __future__ import annotations

from typing import Any, Iterable

from treadle.server.observe.histogram import LatencyHistogram
from treadle.server.observe.stats import latency_summary

SERVER_COUNTERS = (
    "requests_total",
    "responses_total",
    "responses_http2",
    "bytes_in",
    "bytes_out",
    "latency_count",
    "latency_sum_s",
)
SERVER_GAUGES = ("connections_open", "requests_in_flight", "requests_per_second")
REACTOR_COUNTERS = ("iterations", "events", "poll_time_s", "callback_time_s")
REACTOR_GAUGES = ("ready_queue", "timers_pending")
REACTOR_MAXIMA = ("uptime_s", "max_events_per_poll", "lag_ms", "lag_max_ms")
POOL_GAUGES = ("threads", "busy", "waiting")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class Departed:
    """The counters of the workers that are gone, as they last reported them."""

    def __init__(self) -> None:
        self.server = dict.fromkeys(SERVER_COUNTERS, 0)
        self.by_class = dict.fromkeys(STATUS_CLASSES, 0)
        self.reactor = dict.fromkeys(REACTOR_COUNTERS, 0)
        self.buckets = [0] * (len(LatencyHistogram.bounds) + 1)
        self.workers = 0

    def add(self, report: dict[str, Any] | None) -> None:
        """Fold in the last report of a worker that exited (None: it never reported)."""
        if not report:
            return
        self.workers += 1
        server = report["server"]
        for key in SERVER_COUNTERS:
            self.server[key] += server[key]
        for key in STATUS_CLASSES:
            self.by_class[key] += server["responses_by_class"][key]
        for key in REACTOR_COUNTERS if "reactor" in report else ():
            self.reactor[key] += report["reactor"][key]
        for index, count in report.get("latency_buckets", ()):
            self.buckets[index] += count


def combine(
    reports: list[dict[str, Any]], departed: Departed, uptime_s: float, supervisor: dict[str, Any]
) -> dict[str, Any]:
    """The supervisor's snapshot: ``reports`` are the live workers', each with its ``worker``
    (slot), ``pid``, ``report_age_s``... and, once it has reported, its sections."""
    reported = [report for report in reports if "server" in report]
    snapshot: dict[str, Any] = {"server": _server(reported, departed, uptime_s)}
    reactors = [report["reactor"] for report in reported if "reactor" in report]
    if reactors:
        snapshot["reactor"] = _reactor(reactors, departed)
    pools = [report["threadpool"] for report in reported if "threadpool" in report]
    if pools:
        snapshot["threadpool"] = {key: sum(pool[key] for pool in pools) for key in POOL_GAUGES}
    snapshot["workers"] = [{k: v for k, v in report.items() if k != "latency_buckets"} for report in reports]
    snapshot["supervisor"] = supervisor
    return snapshot


def _server(reported: list[dict[str, Any]], departed: Departed, uptime_s: float) -> dict[str, Any]:
    servers = [report["server"] for report in reported]
    counters = {key: departed.server[key] + _sum(servers, key) for key in SERVER_COUNTERS}
    histogram = LatencyHistogram()
    histogram.counts = list(departed.buckets)
    for report in reported:
        for index, count in report.get("latency_buckets", ()):
            histogram.counts[index] += count
    histogram.count, histogram.total = counters["latency_count"], counters["latency_sum_s"]
    by_class = {
        key: departed.by_class[key] + sum(server["responses_by_class"][key] for server in servers)
        for key in STATUS_CLASSES
    }
    return {
        "uptime_s": uptime_s,
        "connections_open": _sum(servers, "connections_open"),
        "requests_total": counters["requests_total"],
        "requests_in_flight": _sum(servers, "requests_in_flight"),
        "requests_per_second": _sum(servers, "requests_per_second"),
        "responses_total": counters["responses_total"],
        "responses_http2": counters["responses_http2"],
        "responses_by_class": by_class,
        "bytes_in": counters["bytes_in"],
        "bytes_out": counters["bytes_out"],
        **latency_summary(histogram),
    }


def _reactor(reactors: list[dict[str, Any]], departed: Departed) -> dict[str, Any]:
    merged: dict[str, Any] = {"selector": reactors[0]["selector"]}
    for key in REACTOR_COUNTERS:
        merged[key] = departed.reactor[key] + _sum(reactors, key)
    for key in REACTOR_GAUGES:
        merged[key] = _sum(reactors, key)
    for key in REACTOR_MAXIMA:
        merged[key] = max((reactor.get(key, 0) for reactor in reactors), default=0)
    iterations, polling, running = merged["iterations"], merged["poll_time_s"], merged["callback_time_s"]
    merged["events_per_poll"] = merged["events"] / iterations if iterations else 0.0
    merged["poll_share"] = polling / (polling + running) if polling + running else 0.0
    return {key: merged[key] for key in reactors[0] if key in merged}  # in a single server's order


def _sum(sections: Iterable[dict[str, Any]], key: str) -> Any:
    return sum(section[key] for section in sections)

