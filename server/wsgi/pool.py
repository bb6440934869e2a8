"""``WorkerPool``: a fixed set of threads running WSGI requests, with a bounded wait queue,
that wakes as few of them as the work needs.

Why not ``concurrent.futures.ThreadPoolExecutor``: its queue is unbounded (an overloaded
server would hoard requests in memory instead of answering 503), it makes a ``Future``
per job that nobody here needs, and it cannot tell the reactor "all work is done"
without polling. This pool takes any object with a ``run()`` method, refuses work once
``queue_size`` jobs are already waiting, and settles an asyncio future on the reactor's
loop when the last running job ends (graceful shutdown waits on that).

Discussion — waking workers on demand. A queue that wakes a sleeping thread for every job
put in it (``queue.SimpleQueue``, ``queue.Queue``) wakes all eight workers for a batch of
eight short requests, and they then take turns at the GIL. On CPython that costs little;
on PyPy, whose GIL changes hands far more slowly, plaintext WSGI ran at 23k requests/s
with 8 threads and 50-59k with 1 or 2, at two thirds of the CPU per request. So a job
wakes a worker only when no worker is awake to take it; jobs queued behind awake workers
are theirs, taken as each finishes. If those workers are blocked instead (a database
call, a sleep), the reactor notices: a check every ``STARVED_AFTER`` seconds, armed while
jobs wait, wakes a sleeper for each job if the job at the head of the queue has not moved
for a whole period. A request to an app that blocks therefore waits at most two periods
longer for its thread than with a thread woken per job.

Threads are daemons: a worker stuck in application code must not keep the process alive
after the graceful timeout has passed.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any, Protocol

from treadle.server.observe.logging import error_logger
from treadle.server.waiters import wake

# Jobs that wait this long behind busy workers get sleeping workers woken for them.
STARVED_AFTER = 0.001


class Job(Protocol):
    def run(self) -> None:
        """Runs in a worker thread; must not raise (a raise is logged and dropped)."""


class WorkerPool:
    def __init__(self, threads: int, queue_size: int, starved_after: float = STARVED_AFTER) -> None:
        if threads < 1:
            raise ValueError(f"a worker pool needs at least one thread, not {threads}")
        self.threads = threads
        self.queue_size = queue_size
        self.starved_after = starved_after
        self.loop: asyncio.AbstractEventLoop | None = None  # the reactor's: runs the starvation check
        # Everything below is guarded by one plain lock, held for a few bytecodes at a time.
        self._lock = threading.Lock()
        self._jobs: collections.deque[Job] = collections.deque()
        # Each parked worker waits on its own lock, held while it sleeps: releasing it is
        # the cheapest wake-up there is (no Condition, no queue of waiters).
        self._sleepers: list[threading.Lock] = []
        self._awake = 0  # workers not parked: running a job, or about to take one
        self._busy = 0  # jobs taken and not yet finished
        self._stopping = False
        self._check_armed = False
        self._head_seen: Job | None = None  # the head of the queue at the last check
        self._idle_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._workers: list[threading.Thread] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the threads; ``loop`` is the reactor's, which alone calls ``submit``."""
        self.loop = loop
        self._awake = self.threads  # each parks at once, there being no work yet
        for number in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"treadle-worker-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)

    # -- runs in the reactor -----------------------------------------------------------------

    def submit(self, job: Job) -> bool:
        """Queue ``job``; False (and nothing queued) if ``queue_size`` jobs already wait."""
        with self._lock:
            jobs = self._jobs
            # Jobs a free worker (asleep, or awake between jobs) will take are not "waiting":
            # with 8 idle threads and a queue size of 0, eight requests still run at once.
            free = len(self._sleepers) + self._awake - self._busy
            if len(jobs) - free >= self.queue_size:
                return False
            jobs.append(job)
            if not self._awake and self._sleepers:
                self._wake_one()  # nobody awake would take it
            if len(jobs) > self._awake - self._busy and not self._check_armed:
                self._check_armed = True  # queued behind busy workers: see the module's discussion
                self._head_seen = None
                assert self.loop is not None
                self.loop.call_later(self.starved_after, self._check_starved)
        return True

    def _check_starved(self) -> None:
        with self._lock:
            jobs = self._jobs
            if not jobs:
                self._check_armed = False
                self._head_seen = None  # holds no request (nor, through it, a connection) once done
                return
            if jobs[0] is self._head_seen:  # waited a whole period: its workers are blocked
                wanted = len(jobs) - (self._awake - self._busy)  # beyond those about to take one
                for _ in range(min(wanted, len(self._sleepers))):
                    self._wake_one()
            self._head_seen = jobs[0]
        self.loop.call_later(self.starved_after, self._check_starved)  # type: ignore[union-attr]

    def _wake_one(self) -> None:
        """Unpark a sleeping worker (with the lock held)."""
        self._awake += 1
        self._sleepers.pop().release()  # the most recent sleeper: its memory is the warmest

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {"threads": len(self._workers), "busy": self._busy, "waiting": len(self._jobs)}

    def idle(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """A future on ``loop`` settled once no job is queued or running (call in the reactor)."""
        waiter = loop.create_future()
        with self._lock:
            if self._busy or self._jobs:
                self._idle_waiters.append((loop, waiter))
                return waiter
        waiter.set_result(None)
        return waiter

    def shutdown(self, timeout: float = 1.0) -> None:
        """Tell every worker to exit once the queue is empty; join them for up to ``timeout``."""
        with self._lock:
            self._stopping = True
            while self._sleepers:
                self._wake_one()
        for thread in self._workers:
            thread.join(timeout / len(self._workers))
        self._workers = [thread for thread in self._workers if thread.is_alive()]
        if self._workers:
            error_logger.warning("%d worker thread(s) still running application code.", len(self._workers))

    # -- runs in a worker --------------------------------------------------------------------

    def _work(self) -> None:
        lock = self._lock
        jobs = self._jobs
        park = threading.Lock()
        park.acquire()  # held while this worker sleeps; a waker releases it
        while True:
            job: Any = None
            with lock:
                if jobs:
                    job = jobs.popleft()
                    self._busy += 1
                elif self._stopping:
                    self._awake -= 1
                    return
                else:
                    self._awake -= 1  # the waker counts us awake again
                    self._sleepers.append(park)
            if job is None:
                park.acquire()
                continue
            try:
                job.run()
            except BaseException as exc:  # pragma: no cover - jobs handle their own errors
                error_logger.critical("Worker job raised", exc_info=exc)
            job = None  # idle, a worker holds no request (nor, through it, a connection's buffers)
            with lock:
                self._busy -= 1
                if self._busy or jobs or not self._idle_waiters:
                    continue
                waiters, self._idle_waiters = self._idle_waiters, []
            for loop, waiter in waiters:
                _settle_threadsafe(loop, waiter)


def _settle_threadsafe(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future) -> None:
    try:
        loop.call_soon_threadsafe(wake, waiter)
    except RuntimeError:
        pass  # the loop is closed: nobody waits any more
