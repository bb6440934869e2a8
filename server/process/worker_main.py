"""What a supervised worker process runs, from the fork to its exit (server/process/supervisor.py).

It serves an ordinary ``Server`` on the sockets the supervisor bound, and reports on its
pipe (server/process/reports.py): READY once listening; RETIRE when ``--limit-max-requests``
is reached; and, every ``interval``, from its event loop, a sign of life for the health
check (``--timeout-worker-healthcheck``) — its stats report when the supervisor collects
them (``--stats-port`` or ``--stats-interval``), a bare BEAT otherwise. Sent from the loop on
purpose: a worker whose loop is stuck in the app stops reporting, and is replaced.

It outlives nothing: a thread waits on the "lifeline" pipe only the supervisor holds open,
and shuts the server down once it reads end-of-file (the supervisor was killed).

``faulthandler`` is on, so the SIGABRT the supervisor sends a stuck worker prints every
thread's stack to stderr before the process dies: the log says where the loop was stuck
(on CPython; PyPy's faulthandler prints the main thread's alone).
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import ssl
import sys
import threading
import traceback
from typing import Any, NoReturn

from treadle.server.config import Config
from treadle.server.main import Server
from treadle.server.observe.logging import error_logger
from treadle.server.process.reports import Report, ReportWriter

REPORT_INTERVAL = 1.0  # seconds between reports; less with a short health-check timeout


def run_worker(
    config: Config,
    sockets: list[Any],
    ssl_context: ssl.SSLContext | None,
    report_fd: int,
    lifeline_fd: int,
    collect: bool,
) -> NoReturn:
    """Serve, reporting on ``report_fd``; never returns (``os._exit``). The caller has closed
    the supervisor's own descriptors; ``collect``: send stats reports."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        faulthandler.enable()
        writer = ReportWriter(report_fd)
        server = Server(config, sockets, ssl_context)
        server.collect_stats = collect
        server.on_retire = lambda: writer.send(Report.RETIRE)
        healthcheck = config.timeout_worker_healthcheck
        interval = min(REPORT_INTERVAL, healthcheck / 4) if healthcheck else REPORT_INTERVAL
        reporter = Reporter(server, writer, interval, collect)

        def ready() -> None:
            writer.send(Report.READY)
            if collect or healthcheck:
                reporter.start()
            threading.Thread(target=_outlive, args=(lifeline_fd, server), name="treadle-lifeline", daemon=True).start()

        code = server.run(ready=ready, sigint=False)  # SIGINT stays ignored, as set above
        if collect and server.observer is not None:
            reporter.report()  # the last numbers, so the supervisor's totals lose none of them
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Reporter:
    """Runs on the worker's event loop: one report every ``interval`` while the loop runs."""

    def __init__(self, server: Server, writer: ReportWriter, interval: float, stats: bool) -> None:
        self._server = server
        self._writer = writer
        self._interval = interval
        self._stats = stats

    def start(self) -> None:
        """Send the first report from the loop (call from any thread)."""
        assert self._server.loop is not None
        self._server.loop.call_soon_threadsafe(self._tick)

    def _tick(self) -> None:
        if self.report():
            assert self._server.loop is not None
            self._server.loop.call_later(self._interval, self._tick)

    def report(self) -> bool:
        """Send the stats report, or a beat; False once the supervisor is gone (the lifeline
        thread then shuts this worker down)."""
        if not self._stats:
            return self._writer.send(Report.BEAT)
        assert self._server.observer is not None
        return self._writer.send(Report.STATS, json.dumps(self._server.observer.report()).encode())


def _outlive(lifeline_fd: int, server: Server) -> None:
    """Runs in a worker: wait for the supervisor to die, then shut down gracefully."""
    while os.read(lifeline_fd, 1):
        pass
    error_logger.warning("The supervisor is gone; shutting down.")
    server.request_shutdown()
