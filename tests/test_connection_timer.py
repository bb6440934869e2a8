"""``ConnectionControl``'s one lazy deadline per connection, on a real Reactor.

The deadline moves without touching the loop's timer heap; these tests check that it still
fires exactly when (and only when) the latest deadline says, and that re-arming it per
request leaves one handle in the heap, not one per request.
"""

from __future__ import annotations

import asyncio

import pytest

from treadle import reactor
from treadle.server.http1.timers import NO_TIMER, ConnectionControl

FIRST, SECOND = 1, 2


class Connection(ConnectionControl):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport = None
        self.fired: list[tuple[int, float]] = []
        self.done = loop.create_future()

    def _timer_fired(self, kind: int) -> None:
        self.fired.append((kind, self.loop.time()))
        if not self.done.done():
            self.done.set_result(None)


@pytest.fixture
def loop():
    loop = reactor.new_event_loop()
    yield loop
    loop.close()


def settle(loop, conn: Connection, seconds: float) -> None:
    """Run the loop until the connection's timer fired, or for ``seconds`` at most."""

    async def wait():
        try:
            await asyncio.wait_for(asyncio.shield(conn.done), seconds)
        except asyncio.TimeoutError:
            pass

    loop.run_until_complete(wait())


def test_a_later_deadline_keeps_the_handle_and_fires_at_the_new_time(loop):
    conn = Connection(loop)
    start = loop.time()
    conn._set_timer(FIRST, 0.05)
    handle = conn._timer
    conn._set_timer(SECOND, 0.25)
    assert conn._timer is handle  # not replaced: it fires first and re-arms
    settle(loop, conn, 5)
    [(kind, when)] = conn.fired
    assert kind == SECOND and when - start >= 0.25


def test_an_earlier_deadline_replaces_the_handle(loop):
    conn = Connection(loop)
    start = loop.time()
    conn._set_timer(FIRST, 30)
    conn._set_timer(SECOND, 0.05)
    settle(loop, conn, 5)
    [(kind, when)] = conn.fired
    assert kind == SECOND and when - start < 30
    assert len(loop._timers) == 0  # the 30 s handle was cancelled and is gone


def test_a_cancelled_deadline_never_fires(loop):
    conn = Connection(loop)
    conn._set_timer(FIRST, 0.05)
    conn._cancel_timer()
    settle(loop, conn, 0.3)  # well past the deadline: the armed handle fired and did nothing
    assert conn.fired == [] and conn._timer is None and conn._timer_kind == NO_TIMER


def test_rearming_per_request_leaves_one_handle_in_the_heap(loop):
    conn = Connection(loop)
    for _ in range(1000):  # what a keep-alive connection does per request
        conn._cancel_timer()
        conn._set_timer(FIRST, 5)
    assert len(loop._timers) == 1


def test_drop_timer_removes_the_handle(loop):
    conn = Connection(loop)
    conn._set_timer(FIRST, 5)
    conn._drop_timer()
    assert conn._timer is None and len(loop._timers) == 0
