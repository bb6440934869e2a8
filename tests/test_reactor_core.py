"""The Reactor's scheduling core: callbacks, timers, run/stop, tasks, errors, threads, executors,
selector backends, and what happens when it is misused.

Every wait is on a condition with a deadline; nothing sleeps in the hope that work got done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import selectors
import socket
import sys
import threading
import time

import pytest

from treadle import reactor
from treadle.reactor.selection import available_selectors


@pytest.fixture
def loop():
    loop = reactor.new_event_loop()
    yield loop
    if not loop.is_closed():
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def run(loop, coro, timeout: float = 10.0):
    """Run `coro` on `loop`, failing (not hanging) past `timeout`."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


# ---------------------------------------------------------------------- scheduling order


def test_call_soon_runs_in_fifo_order(loop) -> None:
    seen = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [0, 1, 2, 3, 4]


def test_callbacks_scheduled_by_callbacks_wait_for_the_next_pass(loop) -> None:
    seen = []

    def first():
        seen.append("first")
        loop.call_soon(seen.append, "scheduled by first")

    loop.call_soon(first)
    loop.call_soon(seen.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    # stop() lets the pass finish; what first() scheduled belongs to the next pass.
    assert seen == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["first", "second", "scheduled by first"]


def test_timers_run_by_deadline_then_by_scheduling_order(loop) -> None:
    seen = []
    now = loop.time()
    loop.call_at(now + 0.03, seen.append, "c")
    loop.call_later(0.01, seen.append, "a")
    loop.call_at(now + 0.02, seen.append, "b1")
    loop.call_at(now + 0.02, seen.append, "b2")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert seen == ["a", "b1", "b2", "c"]


def test_call_later_waits_at_least_its_delay(loop) -> None:
    fired = []
    start = loop.time()
    loop.call_later(0.05, lambda: fired.append(loop.time()))
    loop.call_later(0.06, loop.stop)
    loop.run_forever()
    assert fired and fired[0] - start >= 0.05 - loop._clock_resolution


def test_cancelled_handles_do_not_run(loop) -> None:
    seen = []
    loop.call_soon(seen.append, "soon").cancel()
    loop.call_later(0.001, seen.append, "later").cancel()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert seen == []


def test_call_later_rejects_none_delay(loop) -> None:
    with pytest.raises(TypeError):
        loop.call_later(None, lambda: None)
    with pytest.raises(TypeError):
        loop.call_at(None, lambda: None)


# ---------------------------------------------------------------------- run / stop / close


def test_stop_before_run_forever_runs_one_pass(loop) -> None:
    seen = []
    loop.call_soon(seen.append, 1)
    loop.stop()
    loop.run_forever()
    assert seen == [1]
    assert not loop.is_running()


def test_run_until_complete_returns_result_and_raises_exceptions(loop) -> None:
    async def answer():
        await asyncio.sleep(0)
        return 42

    async def boom():
        raise KeyError("x")

    assert loop.run_until_complete(answer()) == 42
    with pytest.raises(KeyError):
        loop.run_until_complete(boom())


def test_run_until_complete_stopped_early_raises(loop) -> None:
    future = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(future)


def test_is_running_inside_and_outside(loop) -> None:
    async def probe():
        return loop.is_running(), asyncio.get_running_loop() is loop

    assert loop.run_until_complete(probe()) == (True, True)
    assert not loop.is_running()


# ---------------------------------------------------------------------- tasks


def test_create_task_name_and_context(loop) -> None:
    var = contextvars.ContextVar("var", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")

    async def read_var():
        return var.get()

    # create_task(context=...) is new in Python 3.11 (asyncio.Task takes no context before).
    with_context = sys.version_info >= (3, 11)

    async def main():
        named = loop.create_task(read_var(), name="the-name")
        seen = [named.get_name(), await named]
        if with_context:
            seen.append(await loop.create_task(read_var(), context=ctx))
        return seen

    assert loop.run_until_complete(main()) == ["the-name", "unset"] + (["in ctx"] if with_context else [])


def test_set_task_factory(loop) -> None:
    made = []

    def factory(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def main():
        return 7

    task = loop.create_task(main(), name="via-factory")
    assert loop.run_until_complete(task) == 7
    assert made == [task] and task.get_name() == "via-factory"
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None
    with pytest.raises(TypeError):
        loop.set_task_factory(42)


# ---------------------------------------------------------------------- errors and debug


def test_raising_callback_reaches_handler_and_loop_keeps_running(loop) -> None:
    contexts = []
    loop.set_exception_handler(lambda lp, context: contexts.append(context))
    assert loop.get_exception_handler() is not None
    after = []

    def bad():
        raise ZeroDivisionError("boom")

    loop.call_soon(bad)
    loop.call_soon(after.append, "still running")
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert after == ["still running"]
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_default_exception_handler_logs_to_asyncio_logger(loop, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "something broke", "exception": ValueError("v")})
    assert "something broke" in caplog.text
    assert "ValueError" in caplog.text


def test_broken_exception_handler_falls_back_to_default(loop, caplog) -> None:
    def broken(lp, context):
        raise RuntimeError("handler is broken")

    loop.set_exception_handler(broken)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "original"})
    assert "Unhandled error in exception handler" in caplog.text


def test_set_exception_handler_rejects_non_callable(loop) -> None:
    with pytest.raises(TypeError):
        loop.set_exception_handler("not callable")


def test_debug_mode_warns_about_slow_callbacks(loop, caplog) -> None:
    loop.set_debug(True)
    assert loop.get_debug()
    loop.slow_callback_duration = 0.01

    def slow():
        time.sleep(0.05)

    with caplog.at_level(logging.WARNING, logger="reactor"):
        loop.call_soon(slow)
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert any("Executing" in r.message and "took" in r.message for r in caplog.records)


def test_debug_mode_rejects_coroutines_as_callbacks(loop) -> None:
    loop.set_debug(True)

    async def coro_fn():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.call_soon(coro_fn)


# ---------------------------------------------------------------------- executor, to_thread, asyncgens


def test_run_in_executor_and_to_thread(loop) -> None:
    caller = threading.get_ident()

    async def main():
        in_pool = await loop.run_in_executor(None, threading.get_ident)
        via_to_thread = await asyncio.to_thread(lambda x: (threading.get_ident(), x * 2), 21)
        return in_pool, via_to_thread

    in_pool, (to_thread_ident, doubled) = run(loop, main())
    assert in_pool != caller and to_thread_ident != caller
    assert doubled == 42


def test_executor_exception_is_delivered(loop) -> None:
    def fails():
        raise LookupError("from the pool")

    with pytest.raises(LookupError, match="from the pool"):
        run(loop, loop.run_in_executor(None, fails))


def test_executor_timeout_becomes_asyncio_timeout(loop) -> None:
    # As asyncio's wrap_future: concurrent.futures.TimeoutError (work that gave up waiting on a
    # concurrent future) surfaces as asyncio.TimeoutError, a class of its own before 3.11.
    def times_out():
        raise concurrent.futures.TimeoutError("gave up")

    with pytest.raises(asyncio.TimeoutError, match="gave up"):
        run(loop, loop.run_in_executor(None, times_out))


def test_shutdown_default_executor_joins_threads_and_refuses_new_work(loop) -> None:
    finished = threading.Event()

    def work():
        time.sleep(0.05)
        finished.set()

    async def main():
        loop.run_in_executor(None, work)
        await loop.shutdown_default_executor()

    run(loop, main())
    assert finished.is_set()
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        loop.run_in_executor(None, work)


def test_set_default_executor_requires_thread_pool(loop) -> None:
    with pytest.raises(TypeError):
        loop.set_default_executor(object())


def test_shutdown_asyncgens_closes_unfinished_generators(loop) -> None:
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        gen = agen()
        assert await gen.__anext__() == 1
        return gen  # left suspended at its first yield

    gen = run(loop, main())
    assert closed == []
    run(loop, loop.shutdown_asyncgens())
    assert closed == [True]
    del gen


# ---------------------------------------------------------------------- selector backends


async def _echo_round_trip(payload: bytes) -> bytes:
    async def handle(reader, writer):
        writer.write(await reader.readexactly(len(payload)))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    data = await reader.readexactly(len(payload))
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return data


@pytest.mark.parametrize("name", available_selectors())
def test_each_available_backend_runs_the_same_echo(name) -> None:
    loop = reactor.new_event_loop(name)
    try:
        assert loop.selector_name == name
        payload = b"echo over " + name.encode() + b" " + b"x" * 100_000
        assert run(loop, _echo_round_trip(payload)) == payload
    finally:
        loop.close()


def test_default_backend_is_the_best_available() -> None:
    loop = reactor.Reactor()
    try:
        assert loop.selector_name == available_selectors()[0]
    finally:
        loop.close()


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ValueError) as info:
        reactor.Reactor(selector="carrier-pigeon")
    for name in available_selectors():
        assert name in str(info.value)


def test_unavailable_backend_names_the_choices() -> None:
    missing = [name for name, cls in (("kqueue", "KqueueSelector"), ("epoll", "EpollSelector"),
                                       ("devpoll", "DevpollSelector")) if not hasattr(selectors, cls)]
    if not missing:
        pytest.skip("every backend is available here")
    with pytest.raises(ValueError, match="not available") as info:
        reactor.Reactor(selector=missing[0])
    assert available_selectors()[0] in str(info.value)


# ---------------------------------------------------------------------- timers under load


def test_timer_heap_stays_bounded_under_cancelled_timer_flood(loop) -> None:
    # A server arms and disarms a timeout per request: cancelled entries must not pile up.
    keeper = loop.call_later(3600, lambda: None)
    for _ in range(100_000):
        loop.call_later(60, lambda: None).cancel()
    heap_entries = len(loop._timers._heap)
    assert heap_entries <= 250, heap_entries
    assert len(loop._timers) == 1
    keeper.cancel()


def test_many_live_timers_all_fire_in_order(loop) -> None:
    fired = []
    base = loop.time()
    for i in reversed(range(500)):
        loop.call_at(base + i * 0.0001, fired.append, i)
    loop.call_at(base + 0.1, loop.stop)
    loop.run_forever()
    assert fired == list(range(500))


# ---------------------------------------------------------------------- threads


def test_threads_hammering_call_soon_threadsafe_lose_nothing(loop) -> None:
    threads_count, per_thread = 8, 5_000
    received = []
    all_in = loop.create_future()
    expected = threads_count * per_thread

    def record(item):
        received.append(item)
        if len(received) == expected and not all_in.done():
            all_in.set_result(None)

    start = threading.Barrier(threads_count)

    def hammer(tid):
        start.wait()
        for i in range(per_thread):
            loop.call_soon_threadsafe(record, (tid, i))

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(threads_count)]
    for t in threads:
        t.start()
    run(loop, all_in, timeout=30)
    for t in threads:
        t.join(5)
    assert len(received) == expected
    assert set(received) == {(t, i) for t in range(threads_count) for i in range(per_thread)}
    for t in range(threads_count):  # each thread's calls arrive in the order it made them
        assert [i for tid, i in received if tid == t] == list(range(per_thread))


def test_call_soon_threadsafe_wakes_a_blocked_loop_at_once(loop) -> None:
    # No timers, nothing ready: the loop blocks in select() until the waker fires.
    woke = loop.create_future()
    latencies = []

    def from_thread():
        for _ in range(5):
            sent = time.monotonic()
            done = threading.Event()
            loop.call_soon_threadsafe(lambda s=sent, d=done: (latencies.append(time.monotonic() - s), d.set()))
            assert done.wait(5)
        loop.call_soon_threadsafe(woke.set_result, None)

    thread = threading.Thread(target=from_thread)
    thread.start()
    run(loop, woke)
    thread.join(5)
    assert len(latencies) == 5
    assert max(latencies) < 0.5, latencies


def test_run_coroutine_threadsafe(loop) -> None:
    async def double(x):
        await asyncio.sleep(0)
        return x * 2

    results = []
    stop = loop.create_future()

    def worker():
        results.append(asyncio.run_coroutine_threadsafe(double(21), loop).result(5))
        loop.call_soon_threadsafe(stop.set_result, None)

    thread = threading.Thread(target=worker)
    thread.start()
    run(loop, stop)
    thread.join(5)
    assert results == [42]


def test_loop_runs_on_a_non_main_thread() -> None:
    outcome = []

    def target():
        outcome.append(reactor.run(asyncio.sleep(0.01, result="ran")))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert outcome == ["ran"]


# ---------------------------------------------------------------------- misuse


def test_closing_a_running_loop_is_refused(loop) -> None:
    async def main():
        with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
            loop.close()

    run(loop, main())
    assert not loop.is_closed()


def test_running_a_closed_loop_is_refused() -> None:
    loop = reactor.new_event_loop()
    loop.close()
    loop.close()  # idempotent
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(lambda: None)


def test_running_two_loops_in_one_thread_is_refused(loop) -> None:
    other = reactor.new_event_loop()

    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="another loop is running"):
                other.run_until_complete(coro)
        finally:
            coro.close()
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_forever()

    try:
        run(loop, main())
    finally:
        other.close()


def test_reactor_run_refuses_a_running_loop(loop) -> None:
    async def main():
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            reactor.run(coro)
        coro.close()

    run(loop, main())


@pytest.mark.parametrize("name", available_selectors())
def test_fd_closed_behind_the_loops_back_never_hangs(name) -> None:
    # A registered socket closed without remove_reader(): the loop must either carry on or
    # raise an OSError from the selector (what asyncio does), and never block forever.
    loop = reactor.new_event_loop(name)
    a, b = socket.socketpair()
    try:
        loop.add_reader(a.fileno(), lambda: None)
        stale_fd = a.fileno()
        a.close()
        timer = loop.call_later(0.05, loop.stop)
        started = time.monotonic()
        try:
            loop.run_forever()
        except OSError:
            timer.cancel()
        assert time.monotonic() - started < 5
        # The loop forgets the stale registration and serves a new file on the reused number.
        loop.remove_reader(stale_fd)
        c, d = socket.socketpair()
        try:
            got = loop.create_future()
            loop.add_reader(c.fileno(), lambda: got.done() or got.set_result(c.recv(10)))
            d.send(b"fresh")
            assert run(loop, got, timeout=5) == b"fresh"
            loop.remove_reader(c.fileno())
        finally:
            c.close()
            d.close()
    finally:
        b.close()
        loop.close()


def test_unclosed_loop_warns() -> None:
    loop = reactor.new_event_loop()
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del loop
        gc.collect()


def test_policy_hands_out_reactors() -> None:
    policy = reactor.EventLoopPolicy()
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, reactor.Reactor)
    finally:
        loop.close()


def test_reactor_run_runs_a_coroutine_and_cleans_up() -> None:
    seen = {}

    async def main():
        seen["loop"] = asyncio.get_running_loop()
        await asyncio.sleep(0)
        return "done"

    assert reactor.run(main(), debug=True) == "done"
    assert isinstance(seen["loop"], reactor.Reactor)
    assert seen["loop"].is_closed()
