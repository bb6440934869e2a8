"""The supervisor: binds the listening socket once and keeps N worker processes serving it.

Used for ``--workers N``, ``--limit-max-requests`` and ``--reload``. Each worker is a
fork of the supervisor running an ordinary ``Server`` on the inherited socket; the kernel
spreads new connections over the workers that are accepting. Because the supervisor holds
the socket open until it is told to stop, a connection that arrives while workers come and
go waits in the listen backlog instead of being refused.

Signals (to the supervisor):

- SIGTERM / SIGINT: graceful shutdown. The supervisor closes its listening sockets, and
  workers get SIGTERM (their own graceful shutdown, which closes theirs first), so new
  clients are refused at once while requests in flight finish. Workers still running
  ``--timeout-graceful-shutdown`` (plus a margin) later are killed. A second signal kills
  them at once.
- SIGHUP: graceful reload. A new generation of workers is started (re-importing the app);
  only once every one of them reports ready are the old ones told to stop, so there is no
  moment without a worker accepting. If a new worker fails to start, the old ones stay.

Workers report on a pipe (server/process/reports.py; the worker's side is
server/process/worker_main.py): ready once listening; retiring when ``--limit-max-requests``
(plus up to ``--limit-max-requests-jitter``, drawn per worker, so that they do not all
retire at once) is reached — the replacement is started right then, while the old worker
finishes its requests, rather than after it exits; and every second or so, from the
worker's event loop, its stats (with ``--stats-port`` or ``--stats-interval``, which the
supervisor then serves and logs for all workers at once: server/process/stats_hub.py) or a
bare sign of life.

Life cycle. A worker that exits unasked is replaced; one that exits before it was ever
ready means the app cannot start, so the supervisor gives up with that exit status instead
of forking failures in a loop — except with ``--reload``, where the next file change will
try again. A worker not ready ``--timeout-worker-startup`` after it was forked (stuck in an
import or in lifespan startup) is killed: a first start then fails, a reload is abandoned.
A ready worker that sends nothing for ``--timeout-worker-healthcheck`` (its event loop is
stuck: an app blocking it, a deadlock) is sent SIGABRT — it prints every thread's stack as
it dies — and replaced at once; SIGKILL follows if it is still there. Neither timeout
applies with ``--reload``, where a developer may sit at a breakpoint.

Workers ignore SIGINT and SIGHUP: a Ctrl+C in the terminal reaches the whole process group,
and only the supervisor should act on it. Workers shut down gracefully if the supervisor
dies (killed with SIGKILL, say): each watches a "lifeline" pipe only the supervisor holds
open, which reads as end-of-file once it is gone.

Discussion: the loop is single-threaded and sleeps in ``select`` on the ready pipes and a
signal wake-up pipe (``signal.set_wakeup_fd``), so signals act immediately and no thread
exists when the supervisor forks.
"""

from __future__ import annotations

import dataclasses
import os
import random
import select
import signal
import ssl
import time
from typing import Any

from treadle.server.config import Config
from treadle.server.main import EXIT_LOAD_ERROR, Server
from treadle.server.observe.logging import configure_logging, error_logger
from treadle.server.process.reload import make_watcher
from treadle.server.process.reports import Report, ReportError, ReportReader
from treadle.server.process.sockets import bind_sockets, remove_unix_socket
from treadle.server.process.stats_hub import StatsHub, wanted
from treadle.server.process.worker_main import run_worker
from treadle.server.tls import TLSConfigError, server_ssl_context

KILL_MARGIN = 5.0  # seconds past the graceful timeout before a stopping worker is killed
ABORT_MARGIN = 2.0  # seconds a worker sent SIGABRT has to dump its stacks before SIGKILL
TICK = 0.5  # longest sleep: how often deadlines and the file watcher are checked


def serve(config: Config) -> int:
    """Serve ``config`` in this process, or under a supervisor when it asks for processes
    (``--workers``, ``--reload``, ``--limit-max-requests``); returns the exit code."""
    if config.reload and not isinstance(config.app, str):
        raise ValueError("reload needs the app as an import string ('module:attribute')")
    if config.reload or config.workers > 1 or config.limit_max_requests:
        return Supervisor(config).run()
    return Server(config).run()


class Worker:
    """The supervisor's record of one worker process."""

    __slots__ = ("pid", "report_fd", "reader", "reporting", "ready", "generation", "slot", "started", "heard",
                 "stop_asked", "timed_out", "kill_at", "report", "reported_at")

    def __init__(self, pid: int, report_fd: int, generation: int, slot: int) -> None:
        self.pid = pid
        self.report_fd = report_fd
        self.reader = ReportReader()
        self.reporting = True  # its end of the pipe is open
        self.ready = False
        self.generation = generation
        self.slot = slot  # 1, 2...: the lowest number no other live worker has (a stats label)
        self.started = time.monotonic()
        self.heard = self.started  # its last report: the health check's clock
        self.stop_asked = False  # told to stop, retiring, or replaced: its exit is expected
        self.timed_out = False  # sent SIGABRT by a start-up or health-check timeout
        self.kill_at: float | None = None  # SIGKILL then, if it has not exited
        self.report: dict[str, Any] | None = None  # its latest stats report (server/process/stats_hub.py)
        self.reported_at = 0.0


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.watcher: Any = None  # with --reload: server.reload's watcher; a change reloads
        self.sockets: list[Any] = []
        self.ssl_context: ssl.SSLContext | None = None  # the workers' (inherited by each fork)
        self.stats: StatsHub | None = None  # with --stats-port or --stats-interval: all workers' numbers
        self.workers: dict[int, Worker] = {}
        self.restarts = 0  # workers replaced after dying (a crash, an OOM kill, the health check)
        self.current = 0  # the generation that serves
        self.generations = 0  # generations started so far (numbers are never reused)
        self.incoming: int | None = None  # the generation being started by a reload
        self.stopping = False
        self.exit_code = 0
        self._signals: list[int] = []
        self._wake_r = self._wake_w = -1
        self._lifeline_r = self._lifeline_w = -1

    # -- the supervisor process --------------------------------------------------------------

    def run(self) -> int:
        """Bind, start the workers, supervise until told to stop; returns the exit code."""
        config = self.config
        configure_logging(config.log_level, config.log_config, config.access_log, config.log_format)
        try:
            # Built once, here: a bad certificate is reported once, not by each worker.
            self.ssl_context = server_ssl_context(config)
            self.sockets = bind_sockets(config)
            if wanted(config):
                self.stats = StatsHub(config, self.workers.values, lambda: self.restarts)  # binds --stats-port
        except (OSError, TLSConfigError) as exc:
            error_logger.error("%s", exc)
            for sock in self.sockets:
                sock.close()
            return EXIT_LOAD_ERROR
        self._wake_r, self._wake_w = os.pipe()
        self._lifeline_r, self._lifeline_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        previous_wakeup = signal.set_wakeup_fd(self._wake_w)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            error_logger.info("Started supervisor process [%d]", os.getpid())
            if config.reload:
                self.watcher = make_watcher(config.reload_dirs, config.reload_includes, config.reload_excludes)
            if self.stats is not None:
                self.stats.start()
            self._start_generation(self.current)
            while self.workers or not self.stopping:
                self._wait()
                self._handle_signals()
                self._reap()
                self._check_health()
                self._enforce_deadlines()
                self._check_reload()
                self._watch()
            error_logger.info("Stopping supervisor process [%d]", os.getpid())
            return self.exit_code
        finally:
            for worker in self.workers.values():  # only after a bug in this loop: no orphans
                _kill(worker.pid, signal.SIGKILL)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            for fd in (self._wake_r, self._wake_w, self._lifeline_r, self._lifeline_w):
                os.close(fd)
            for sock in self.sockets:
                sock.close()
            if self.stats is not None:
                self.stats.close()
            remove_unix_socket(config)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _wait(self) -> None:
        stats = self.stats
        deadlines = [w.kill_at for w in self.workers.values() if w.kill_at is not None]
        if stats is not None and stats.next_deadline() is not None:
            deadlines.append(stats.next_deadline())
        timeout = max(0.0, min(TICK, min(deadlines, default=TICK) - time.monotonic()))
        reporting = [w.report_fd for w in self.workers.values() if w.reporting]
        readers, writers = (stats.readers(), stats.writers()) if stats is not None else ([], [])
        readable, writable, _ = select.select([self._wake_r, *reporting, *readers], writers, [], timeout)
        if self._wake_r in readable:
            while _read(self._wake_r):
                pass  # the handlers already queued the signals; just empty the pipe
        for worker in list(self.workers.values()):
            if worker.report_fd in readable:
                self._read_reports(worker)
        if stats is not None:
            stats.serve(readable, writable)

    def _read_reports(self, worker: Worker) -> None:
        """Take in whatever the worker's pipe holds (it is non-blocking)."""
        while worker.reporting:
            try:
                data = os.read(worker.report_fd, 65536)
            except BlockingIOError:
                return
            if not data:
                worker.reporting = False  # it is exiting; the reap will tell how
                return
            worker.heard = time.monotonic()
            try:
                messages = worker.reader.feed(data)
            except ReportError as exc:  # not a worker of ours speaking: stop listening to it
                error_logger.error("Worker [%d] sent %s; ignoring its reports.", worker.pid, exc)
                worker.reporting = False
                return
            for kind, payload in messages:
                self._report(worker, kind, payload)

    def _report(self, worker: Worker, kind: Report, payload: bytes) -> None:
        if kind is Report.READY:
            worker.ready = True
            error_logger.info("Worker [%d] ready", worker.pid)
        elif kind is Report.RETIRE and not self.stopping and not worker.stop_asked:
            error_logger.info("Worker [%d] is retiring; starting a new one.", worker.pid)
            self._replace(worker, self._stop_deadline())
        elif kind is Report.STATS and self.stats is not None:
            self.stats.received(worker, payload)

    def _check_health(self) -> None:
        """Kill the workers that take too long to start (even those told to stop meanwhile:
        they have no request to finish), and replace those whose loop went silent."""
        if self.config.reload:
            return
        now = time.monotonic()
        starting, healthcheck = self.config.timeout_worker_startup, self.config.timeout_worker_healthcheck
        for worker in list(self.workers.values()):
            if worker.timed_out:
                continue
            if not worker.ready and starting and now - worker.started > starting:
                error_logger.error(
                    "Worker [%d] did not start within %g s (--timeout-worker-startup); killing it.",
                    worker.pid, starting,
                )
                _kill(worker.pid, signal.SIGABRT)
                worker.timed_out = True
                worker.kill_at = now + ABORT_MARGIN  # SIGKILL then; its exit counts as a failed start
            elif worker.ready and healthcheck and now - worker.heard > healthcheck and not (
                worker.stop_asked or self.stopping
            ):
                error_logger.error(
                    "Worker [%d] has not answered for %g s (--timeout-worker-healthcheck); replacing it.",
                    worker.pid, healthcheck,
                )
                _kill(worker.pid, signal.SIGABRT)
                worker.timed_out = True
                self.restarts += 1
                self._replace(worker, now + ABORT_MARGIN)

    def _replace(self, worker: Worker, kill_at: float) -> None:
        """Start the worker's successor now; it is expected to exit, killed at ``kill_at``."""
        worker.stop_asked = True
        worker.kill_at = kill_at
        self._spawn(worker.generation)

    def _handle_signals(self) -> None:
        signals, self._signals = self._signals, []
        for signum in signals:
            if signum in (signal.SIGINT, signal.SIGTERM):
                self._stop(f"Received {signal.Signals(signum).name}")
            elif signum == signal.SIGHUP and not self.stopping:
                error_logger.info("Received SIGHUP; reloading workers gracefully.")
                self._start_reload()

    def _stop(self, why: str) -> None:
        if self.stopping:
            error_logger.info("%s again; killing workers.", why)
            for worker in self.workers.values():
                _kill(worker.pid, signal.SIGKILL)
            return
        self.stopping = True
        # Stop listening first (the workers close their copies as they begin to stop): a
        # new client is refused at once, rather than queued in the backlog to be reset when
        # the last worker exits. A reload, unlike this, keeps the socket.
        for sock in self.sockets:
            sock.close()
        error_logger.info("%s; stopping workers gracefully.", why)
        for worker in self.workers.values():
            self._tell_to_stop(worker)

    def _start_reload(self) -> None:
        if self.incoming is not None:
            # Its workers load code that is now stale, or are stuck starting: start over.
            error_logger.info("Abandoning the reload in progress for a new one.")
            self._abandon_reload()
        self.generations += 1
        self.incoming = self.generations
        self._start_generation(self.incoming)

    def _check_reload(self) -> None:
        """Once every new worker is ready, retire the old generation."""
        incoming = self.incoming
        if incoming is None:
            return
        new = [w for w in self.workers.values() if w.generation == incoming and w.kill_at is None]
        if len(new) == self.config.workers and all(w.ready for w in new):
            for worker in self.workers.values():
                if worker.generation != incoming and worker.kill_at is None:
                    self._tell_to_stop(worker)
            self.current, self.incoming = incoming, None
            error_logger.info("Reload complete: %d new worker(s) serving.", len(new))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is not None:
                self._read_reports(worker)  # its last words: a final stats report
                os.close(worker.report_fd)
                if self.stats is not None:
                    self.stats.exited(worker)
                self._exited(worker, _describe_status(status), os.waitstatus_to_exitcode(status))

    def _exited(self, worker: Worker, how: str, code: int) -> None:
        if self.stopping or worker.stop_asked:
            error_logger.info("Worker [%d] stopped (%s)", worker.pid, how)
        elif not worker.ready:
            error_logger.error("Worker [%d] failed to start (%s)", worker.pid, how)
            if worker.generation == self.incoming:
                error_logger.error("Reload abandoned: the old workers keep serving.")
                self._abandon_reload()
            elif self.watcher is None:
                self.exit_code = code if code > 0 else EXIT_LOAD_ERROR
                self._stop("A worker failed to start")
            else:
                error_logger.info("Waiting for file changes before trying again.")
        elif worker.generation == self.incoming:
            error_logger.error("New worker [%d] died (%s); reload abandoned.", worker.pid, how)
            self._abandon_reload()
        else:
            log = error_logger.info if code == 0 else error_logger.warning
            log("Worker [%d] exited (%s); starting a new one.", worker.pid, how)
            self.restarts += 1
            self._spawn(worker.generation)

    def _abandon_reload(self) -> None:
        for worker in self.workers.values():
            if worker.generation == self.incoming:
                self._tell_to_stop(worker)
        self.incoming = None

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for worker in self.workers.values():
            if worker.kill_at is not None and now >= worker.kill_at:
                error_logger.warning("Worker [%d] did not stop in time; killing it.", worker.pid)
                _kill(worker.pid, signal.SIGKILL)
                worker.kill_at = now + TICK * 10  # keep waiting for it, without spinning

    def _watch(self) -> None:
        if self.watcher is None or self.stopping:
            return
        changed = self.watcher.changes()
        if changed:
            shown = ", ".join(sorted(changed)[:3]) + (" ..." if len(changed) > 3 else "")
            error_logger.info("Detected changes in %s; reloading.", shown)
            self._start_reload()

    def _tell_to_stop(self, worker: Worker) -> None:
        worker.stop_asked = True
        worker.kill_at = self._stop_deadline()
        _kill(worker.pid, signal.SIGTERM)

    def _stop_deadline(self) -> float:
        """When a worker stopping now is killed if it has not exited."""
        return time.monotonic() + self.config.timeout_graceful_shutdown + KILL_MARGIN

    def _start_generation(self, generation: int) -> None:
        for _ in range(self.config.workers):
            self._spawn(generation)

    def _spawn(self, generation: int) -> None:
        used = {worker.slot for worker in self.workers.values()}
        slot = next(n for n in range(1, len(used) + 2) if n not in used)
        config = self._worker_config()
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: close what only the supervisor holds, then serve
            os.close(report_r)
            for fd in (self._wake_r, self._wake_w, self._lifeline_w, *(w.report_fd for w in self.workers.values())):
                os.close(fd)
            if self.stats is not None:
                self.stats.close()  # the worker's copies of the stats port and its clients
            run_worker(config, self.sockets, self.ssl_context, report_w, self._lifeline_r, self.stats is not None)
        os.close(report_w)
        os.set_blocking(report_r, False)
        self.workers[pid] = Worker(pid, report_r, generation, slot)
        if config.limit_max_requests and self.config.limit_max_requests_jitter:
            error_logger.info("Started worker [%d] (retires after %d requests)", pid, config.limit_max_requests)
        else:
            error_logger.info("Started worker [%d]", pid)

    def _worker_config(self) -> Config:
        """A worker's options: no stats port or summary of its own when the supervisor has
        them, and its own --limit-max-requests, jittered (drawn here, in the parent, since
        each draw is for one worker)."""
        config = self.config
        changes: dict[str, Any] = {}
        if self.stats is not None:
            changes.update(stats_port=None, stats_interval=None)
        if config.limit_max_requests and config.limit_max_requests_jitter:
            jitter = random.randint(0, config.limit_max_requests_jitter)
            changes.update(limit_max_requests=config.limit_max_requests + jitter, limit_max_requests_jitter=0)
        return dataclasses.replace(config, **changes) if changes else config


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 512)
    except BlockingIOError:
        return b""


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # already gone; the next reap collects it


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"
