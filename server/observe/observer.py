"""Opt-in observability for one server: reactor counters and trace, stats endpoint, periodic log.

``Observer`` turns on only what the config asks for (``--stats-port``, ``--stats-interval``,
``--trace-reactor``), or what a supervisor collecting its workers' numbers asks for
(``collect``); with none of them it installs nothing, so the loop runs untouched.
Its snapshot gathers three sections, each from the object that owns the numbers::

    {"server": ServerStats + ServerState gauges,
     "reactor": LoopStats and the loop lag (present when counting is on),
     "threadpool": WorkerPool.statistics() (present when a WSGI pool runs)}

``report()`` adds what a supervisor needs to merge several workers' percentiles: the
latency histogram's bucket counts.

Threads: the endpoint and the periodic log run in their own threads and only read; the
trace is written by the reactor thread as each poll ends, so ``stop()`` (which flushes and
closes it) must be called once the loop has stopped running.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import IO, Any, Callable

from treadle.reactor.introspect import LoopStats, enable_stats, enable_trace, trace_writer
from treadle.server.config import Config
from treadle.server.observe.endpoint import StatsEndpoint
from treadle.server.observe.lag import LagProbe
from treadle.server.state import ServerState

stats_logger = logging.getLogger("treadle.stats")


class Observer:
    def __init__(self, config: Config, loop: Any, state: ServerState, collect: bool = False) -> None:
        """Bind the stats port (raising OSError if taken) and install the loop hooks asked for;
        ``collect``: count even without an endpoint or a log (a supervisor reads ``report()``)."""
        self.state = state
        self.pool_statistics: Callable[[], dict[str, int]] | None = None  # set by the WSGI pool's owner
        self.endpoint: StatsEndpoint | None = None
        self.loop_stats: LoopStats | None = None
        self.lag: LagProbe | None = None
        self._loop = loop
        self._interval = config.stats_interval
        self._stop_logging = threading.Event()
        self._logger: threading.Thread | None = None
        self._trace_file: IO[str] | None = None
        self._tracer: Any = None
        try:
            if config.stats_port is not None:
                self.endpoint = StatsEndpoint(config.stats_host, config.stats_port, self.snapshot)
            if config.trace_reactor:
                self._start_trace(loop, config.trace_reactor)
        except OSError:
            self.stop()  # release whichever of the port and the file was taken
            raise
        if self.endpoint is not None or self._interval or collect:
            self.loop_stats = enable_stats(loop)
            self.lag = LagProbe(loop)

    def _start_trace(self, loop: Any, target: str) -> None:
        if target == "-":
            stream = sys.stderr
        else:
            # Line-buffered: a trace read while the server runs is complete up to the last poll.
            stream = self._trace_file = open(target, "w", buffering=1, encoding="utf-8")
        self._tracer = enable_trace(loop, trace_writer(stream, as_json=target.endswith(".jsonl")))

    def start(self) -> None:
        if self.lag is not None:
            self._loop.call_soon_threadsafe(self.lag.start)  # its timer lives on the loop
        if self.endpoint is not None:
            self.endpoint.start()
        if self._interval:
            self._logger = threading.Thread(target=self._log_periodically, name="treadle-stats-log", daemon=True)
            self._logger.start()

    def stop(self) -> None:
        """Stop the threads, write the last trace record and close the trace file."""
        if self.lag is not None:
            self.lag.stop()
        if self._logger is not None:
            self._stop_logging.set()
            self._logger.join()
            self._logger = None
        if self.endpoint is not None:
            self.endpoint.stop()
        if self._tracer is not None:
            self._tracer.flush()
            self._tracer = None
        if self._trace_file is not None:
            self._trace_file.close()
            self._trace_file = None

    def snapshot(self) -> dict[str, Any]:
        snapshot = {"server": self.state.stats.snapshot(self.state)}
        if self.loop_stats is not None:
            snapshot["reactor"] = {**self.loop_stats.snapshot(), **self.lag.snapshot()}
        if self.pool_statistics is not None:
            snapshot["threadpool"] = self.pool_statistics()
        return snapshot

    def report(self) -> dict[str, Any]:
        """The snapshot, plus the latency histogram as ``[bucket, count]`` pairs of its non-empty
        buckets (server/observe/aggregate.py merges them into percentiles over all workers)."""
        snapshot = self.snapshot()
        counts = self.state.stats.latency.counts
        snapshot["latency_buckets"] = [[index, count] for index, count in enumerate(counts) if count]
        return snapshot

    def _log_periodically(self) -> None:
        previous = None
        while not self._stop_logging.wait(self._interval):
            snapshot = self.snapshot()
            stats_logger.info("%s", summary_line(snapshot, previous))
            previous = snapshot


def summary_line(snapshot: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """One line for the log: rate, latency, connections, bytes, and the loop's busy share.

    With the ``previous`` snapshot, the loop's numbers are for the interval between the two
    (a loop that was busy an hour ago and idle now should read idle), else since the start.
    """
    server = snapshot["server"]
    p50, p95 = server["latency_ms"]["p50"], server["latency_ms"]["p95"]
    parts = [
        f"{server['requests_per_second']:.1f} req/s",
        f"p50 {_ms(p50)} p95 {_ms(p95)}",
        f"{server['connections_open']} conns",
        f"{server['requests_in_flight']} in flight",
        f"{server['requests_total']} requests",
        f"in {server['bytes_in']} B out {server['bytes_out']} B",
    ]
    reactor = snapshot.get("reactor")
    if reactor is not None:
        since = (previous or {}).get("reactor") or {}
        polls = reactor["iterations"] - since.get("iterations", 0)
        events = reactor["events"] - since.get("events", 0)
        polling = reactor["poll_time_s"] - since.get("poll_time_s", 0.0)
        running = reactor["callback_time_s"] - since.get("callback_time_s", 0.0)
        busy = running / (polling + running) if polling + running > 0 else 0.0
        loop = f"loop {polls} polls, {events / polls if polls else 0:.2f} events/poll, {100 * busy:.0f}% busy"
        if "lag_ms" in reactor:
            loop += f", lag {reactor['lag_ms']:.1f}ms (max {reactor['lag_max_ms']:.1f}ms)"
        parts.append(loop)
    pool = snapshot.get("threadpool")
    if pool is not None:
        parts.append(f"pool {pool['busy']}/{pool['threads']} busy, {pool['waiting']} queued")
    supervisor = snapshot.get("supervisor")
    if supervisor is not None:
        parts.insert(0, f"{supervisor['workers_alive']} workers")
    return " | ".join(parts)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"
