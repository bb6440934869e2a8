"""The supervisor's one view of all its workers' numbers: ``--stats-port`` and ``--stats-interval``
with ``--workers`` (or any supervised run).

Each worker sends its stats report about once a second over its report pipe
(server/process/worker_main.py); the hub keeps the latest of each, and the last of each
worker that exited (server/observe/aggregate.py's ``Departed``), and merges them on demand:
``/stats`` and ``/metrics`` on the supervisor's stats port, the dashboard at ``/``, and one
summary line every ``--stats-interval`` on the logger ``treadle.stats``. Workers themselves
then bind no stats port and log no summary: there is one place to look.

Cheap: a worker serialises a few KiB once a second; the supervisor parses it and merges
only when asked. Robust: a worker that dies mid-report leaves a partial message that is
dropped with its pipe (server/process/reports.py), and one that sends something that does
not parse is logged and keeps its previous report.

Runs in the supervisor's single thread; the endpoint is served from its ``select()``
(server/observe/polled_endpoint.py).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Iterable

from treadle.server.config import Config
from treadle.server.observe.aggregate import Departed, combine
from treadle.server.observe.logging import error_logger
from treadle.server.observe.observer import stats_logger, summary_line
from treadle.server.observe.polled_endpoint import PolledEndpoint


def wanted(config: Config) -> bool:
    """Whether the supervisor should collect its workers' stats."""
    return config.stats_port is not None or bool(config.stats_interval)


class StatsHub:
    def __init__(self, config: Config, workers: Callable[[], Iterable[Any]], restarts: Callable[[], int]) -> None:
        """Bind the stats port now (OSError if taken); ``workers()``: the live ``Worker``
        records, each with ``slot``, ``pid``, ``generation``, ``ready``, ``report`` and
        ``reported_at``; ``restarts()``: how many workers were replaced after dying."""
        self._config = config
        self._workers = workers
        self._restarts = restarts
        self.started = time.monotonic()
        self.departed = Departed()
        self.endpoint = None
        if config.stats_port is not None:
            self.endpoint = PolledEndpoint(config.stats_host, config.stats_port, self.snapshot)
        self._interval = config.stats_interval
        self._next_log = self.started + (self._interval or 0)
        self._previous: dict[str, Any] | None = None

    def start(self) -> None:
        if self.endpoint is not None:
            host, port = self.endpoint.address
            error_logger.info("Stats of all workers on http://%s:%d/ (dashboard), /stats and /metrics", host, port)

    def received(self, worker: Any, payload: bytes) -> None:
        """A worker's stats report arrived."""
        try:
            report = json.loads(payload)
            if not isinstance(report, dict) or not isinstance(report.get("server"), dict):
                raise ValueError("not a stats report")
        except ValueError as exc:
            error_logger.warning("Worker [%d] sent an unreadable stats report: %s", worker.pid, exc)
            return
        worker.report = report
        worker.reported_at = time.monotonic()

    def exited(self, worker: Any) -> None:
        """A worker is gone: its counters stay in the totals."""
        self.departed.add(worker.report)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        workers = sorted(self._workers(), key=lambda worker: worker.slot)
        entries = []
        for worker in workers:
            entry = {"worker": worker.slot, "pid": worker.pid, "generation": worker.generation, "ready": worker.ready}
            if worker.report is not None:
                entry["report_age_s"] = now - worker.reported_at
                entry.update(worker.report)
            entries.append(entry)
        supervisor = {
            "pid": os.getpid(),
            "uptime_s": now - self.started,
            "workers": self._config.workers,
            "workers_alive": len(workers),
            "worker_restarts": self._restarts(),
        }
        return combine(entries, self.departed, now - self.started, supervisor)

    # -- in the supervisor's loop ---------------------------------------------------------------

    def readers(self) -> list[Any]:
        return self.endpoint.readers() if self.endpoint is not None else []

    def writers(self) -> list[Any]:
        return self.endpoint.writers() if self.endpoint is not None else []

    def next_deadline(self) -> float | None:
        deadlines = [self._next_log] if self._interval else []
        if self.endpoint is not None and self.endpoint.next_deadline() is not None:
            deadlines.append(self.endpoint.next_deadline())
        return min(deadlines, default=None)

    def serve(self, readable: list[Any], writable: list[Any]) -> None:
        """Serve the endpoint's ready sockets, and log the summary when it is due."""
        if self.endpoint is not None:
            self.endpoint.serve(readable, writable)
        now = time.monotonic()
        if self._interval and now >= self._next_log:
            self._next_log = now + self._interval
            snapshot = self.snapshot()
            stats_logger.info("%s", summary_line(snapshot, self._previous))
            self._previous = snapshot

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
