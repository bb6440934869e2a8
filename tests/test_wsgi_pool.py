"""The WSGI worker pool's scheduling (server/wsgi/pool.py), on the real reactor: a job wakes a
worker only when no awake worker would take it, and jobs stuck behind blocked workers get
sleeping ones woken for them. (That requests to a blocking app run side by side over real
sockets is tests/test_wsgi_response.py's test_threads_run_requests_concurrently.)"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any, Iterator

from conftest import wait_until

from treadle.reactor import new_event_loop
from treadle.server.wsgi.pool import WorkerPool


class Recorder:
    """A job that notes the worker thread it ran on, after waiting for ``gate`` if it has one."""

    def __init__(self, seen: list[str], gate: threading.Event | None = None, pause: float = 0.0) -> None:
        self.seen = seen
        self.gate = gate
        self.pause = pause
        self.started = threading.Event()

    def run(self) -> None:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.pause)  # (lets the GIL go: another awake worker could take a job meanwhile)
        self.seen.append(threading.current_thread().name)


@contextlib.contextmanager
def running_pool(threads: int, queue_size: int, **options: float) -> Iterator[tuple[Any, WorkerPool]]:
    """A pool on a fresh reactor, once every worker has parked (none awake to take work); shut
    down and the reactor closed when the block ends (a test opens its gates first)."""
    loop = new_event_loop()
    pool = WorkerPool(threads, queue_size, **options)
    pool.start(loop)
    try:
        wait_until(lambda: len(pool._sleepers) == threads)
        yield loop, pool
    finally:
        pool.shutdown(timeout=5)
        loop.close()


def _submit_in_loop(loop, pool: WorkerPool, jobs: list[Recorder]) -> None:
    """Submit ``jobs`` from one reactor callback, as the WSGI runner does at the end of a pass."""

    async def submit() -> None:
        for job in jobs:
            assert pool.submit(job)

    loop.run_until_complete(submit())


def _block_a_worker(loop, pool: WorkerPool, seen: list[str], gate: threading.Event) -> None:
    """Submit a job that holds its worker until ``gate`` is set; return once it is running."""
    blocked = Recorder(seen, gate)
    _submit_in_loop(loop, pool, [blocked])
    assert blocked.started.wait(5)


def test_a_batch_of_quick_jobs_wakes_one_worker_not_all():
    with running_pool(8, 1024, starved_after=60.0) as (loop, pool):  # no starvation check here
        seen: list[str] = []
        _submit_in_loop(loop, pool, [Recorder(seen, pause=0.001) for _ in range(50)])
        wait_until(lambda: len(seen) == 50)
        assert len(set(seen)) == 1, set(seen)  # the one woken worker took the whole batch
        assert pool.statistics() == {"threads": 8, "busy": 0, "waiting": 0}


def test_jobs_behind_a_blocked_worker_get_sleeping_workers_woken():
    gate = threading.Event()
    with running_pool(4, 1024, starved_after=0.005) as (loop, pool):
        try:
            seen: list[str] = []
            _block_a_worker(loop, pool, seen, gate)
            # Queued behind a worker that will not finish: the reactor's check must wake others.
            _submit_in_loop(loop, pool, [Recorder(seen) for _ in range(3)])

            async def until_served() -> None:
                while len(seen) < 3:
                    await asyncio.sleep(0.005)

            loop.run_until_complete(asyncio.wait_for(until_served(), 5))
            assert not gate.is_set() and len(seen) == 3  # served while the first job still blocks
            assert pool.statistics()["busy"] == 1
        finally:
            gate.set()


def test_shutdown_lets_queued_jobs_finish_and_ends_every_thread():
    seen: list[str] = []
    with running_pool(2, 1024) as (loop, pool):
        _submit_in_loop(loop, pool, [Recorder(seen) for _ in range(20)])
    assert len(seen) == 20
    assert not [t for t in threading.enumerate() if t.name.startswith("treadle-worker-") and t.is_alive()]


def test_a_full_queue_refuses_beyond_the_free_workers_and_the_queue_size():
    gate = threading.Event()
    with running_pool(2, 1, starved_after=60.0) as (loop, pool):
        try:
            seen: list[str] = []
            _block_a_worker(loop, pool, seen, gate)

            async def submit_more() -> list[bool]:
                # One sleeping worker is free for one job, and the queue holds one more.
                return [pool.submit(Recorder(seen, gate)) for _ in range(3)]

            assert loop.run_until_complete(submit_more()) == [True, True, False]
        finally:
            gate.set()
