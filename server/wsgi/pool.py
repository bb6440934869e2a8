"""``WorkerPool``: a fixed set of threads running WSGI requests, with a bounded wait queue.

Why not ``concurrent.futures.ThreadPoolExecutor``: its queue is unbounded (an overloaded
server would hoard requests in memory instead of answering 503), it makes a ``Future``
per job that nobody here needs, and it cannot tell the reactor "all work is done"
without polling. This pool takes any object with a ``run()`` method, refuses work once
``queue_size`` jobs are already waiting, and settles an asyncio future on the reactor's
loop when the last running job ends (graceful shutdown waits on that).

Threads are daemons: a worker stuck in application code must not keep the process alive
after the graceful timeout has passed.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Protocol

from treadle.server.observe.logging import error_logger
from treadle.server.waiters import wake


class Job(Protocol):
    def run(self) -> None:
        """Runs in a worker thread; must not raise (a raise is logged and dropped)."""


class WorkerPool:
    def __init__(self, threads: int, queue_size: int) -> None:
        if threads < 1:
            raise ValueError(f"a worker pool needs at least one thread, not {threads}")
        self.threads = threads
        self.queue_size = queue_size
        # A C-implemented queue: taking and putting a job costs no Python-level locking.
        # The counts below are guarded by a plain lock, held for a few bytecodes at a time.
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # None: a worker exits
        self._lock = threading.Lock()
        self._queued = 0  # submitted, not yet taken by a worker
        self._idle = 0  # workers waiting for a job
        self._busy = 0  # jobs taken and not yet finished
        self._idle_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"treadle-worker-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False (and nothing queued) if ``queue_size`` jobs already wait."""
        with self._lock:
            # Jobs an idle worker is about to take are not "waiting": with 8 idle threads
            # and a queue size of 0, eight requests still run at once.
            if self._queued - self._idle >= self.queue_size:
                return False
            self._queued += 1
        self._jobs.put(job)
        return True

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {"threads": len(self._workers), "busy": self._busy, "waiting": self._queued}

    def idle(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """A future on ``loop`` settled once no job is queued or running (call in the reactor)."""
        waiter = loop.create_future()
        with self._lock:
            if self._busy or self._queued:
                self._idle_waiters.append((loop, waiter))
                return waiter
        waiter.set_result(None)
        return waiter

    def shutdown(self, timeout: float = 1.0) -> None:
        """Tell every worker to exit once the queue is empty; join them for up to ``timeout``."""
        for _ in self._workers:
            self._jobs.put(None)
        for thread in self._workers:
            thread.join(timeout / len(self._workers))
        self._workers = [thread for thread in self._workers if thread.is_alive()]
        if self._workers:
            error_logger.warning("%d worker thread(s) still running application code.", len(self._workers))

    # -- runs in a worker --------------------------------------------------------------------

    def _work(self) -> None:
        lock = self._lock
        jobs = self._jobs
        while True:
            with lock:
                self._idle += 1
            job = jobs.get()
            with lock:
                self._idle -= 1
                if job is None:
                    return
                self._queued -= 1
                self._busy += 1
            try:
                job.run()
            except BaseException as exc:  # pragma: no cover - jobs handle their own errors
                error_logger.critical("Worker job raised", exc_info=exc)
            job = None  # idle, a worker holds no request (nor, through it, a connection's buffers)
            with lock:
                self._busy -= 1
                if self._busy or self._queued or not self._idle_waiters:
                    continue
                waiters, self._idle_waiters = self._idle_waiters, []
            for loop, waiter in waiters:
                _settle_threadsafe(loop, waiter)


def _settle_threadsafe(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future) -> None:
    try:
        loop.call_soon_threadsafe(wake, waiter)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more

