"""``Reactor.create_eager_task`` and the server's use of it: an ASGI app's first step runs
inside the read callback that parsed its request, with asyncio's task semantics intact.

Each test observes order through state the coroutine sets, never through timing.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading

import pytest
from conftest import request

from treadle import reactor

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


@pytest.fixture
def loop():
    loop = reactor.new_event_loop()
    yield loop
    loop.close()


def in_callback(loop, fn):
    """Call ``fn`` from a plain loop callback (as a transport calls a protocol) and return
    what it returned, once the loop has run it."""
    result = loop.create_future()
    loop.call_soon(lambda: result.set_result(fn()))
    return loop.run_until_complete(asyncio.wait_for(result, 5))


def test_first_step_runs_before_create_eager_task_returns(loop):
    seen = []

    async def handler():
        seen.append(asyncio.current_task())
        return "done"

    def start():
        task = loop.create_eager_task(handler())
        return task, list(seen)

    task, seen_at_return = in_callback(loop, start)
    assert seen_at_return == [task]  # ran already, as the task itself
    assert task.done() and task.result() == "done"


def test_callbacks_queued_around_the_first_step_are_kept(loop):
    """Something queued right after the task's first step (by another thread, or by a
    finalizer the garbage collector runs inside Task()) still runs, and the step is still
    run eagerly."""
    if sys.version_info >= (3, 12):
        pytest.skip("3.12+ runs the first step natively (Task(eager_start=True)), not from the ready queue")
    real_call_soon = loop.call_soon
    ran = []

    def call_soon(callback, *args, context=None):
        handle = real_call_soon(callback, *args, context=context)
        if isinstance(getattr(callback, "__self__", None), asyncio.Task):
            real_call_soon(ran.append, "queued after the step")
        return handle

    async def handler():
        ran.append("step")

    def start():
        loop.call_soon = call_soon
        try:
            task = loop.create_eager_task(handler())
        finally:
            del loop.call_soon
        return task, list(ran)

    task, at_return = in_callback(loop, start)
    assert at_return == ["step"] and task.done()
    loop.run_until_complete(asyncio.sleep(0))
    assert ran == ["step", "queued after the step"]


def test_a_task_that_waits_carries_on_as_a_normal_task(loop):
    steps = []
    gate = loop.create_future()

    async def handler():
        steps.append("first")
        await gate
        steps.append(("second", asyncio.current_task()))
        return 42

    def start():
        task = loop.create_eager_task(handler())
        return task, list(steps)

    task, at_return = in_callback(loop, start)
    assert at_return == ["first"] and not task.done()
    gate.set_result(None)
    assert loop.run_until_complete(asyncio.wait_for(task, 5)) == 42
    assert steps == ["first", ("second", task)]


def test_context_is_a_copy_as_for_create_task(loop):
    var.set("caller")

    async def handler():
        seen = var.get()
        var.set("handler")
        return seen

    task = in_callback(loop, lambda: loop.create_eager_task(handler()))
    assert task.result() == "caller"  # inherits the caller's values...
    assert var.get() == "caller"  # ...and its own changes stay its own


def test_exception_in_first_step_is_the_tasks(loop):
    async def handler():
        raise ValueError("boom")

    task = in_callback(loop, lambda: loop.create_eager_task(handler()))
    assert task.done()
    with pytest.raises(ValueError, match="boom"):
        task.result()


def test_inside_another_task_the_step_waits_for_its_turn(loop):
    steps = []

    async def inner():
        steps.append("inner")

    async def outer():
        task = loop.create_eager_task(inner())
        steps.append("outer continues")  # before inner: no task nesting in another
        await task
        return task

    task = loop.run_until_complete(asyncio.wait_for(outer(), 5))
    assert steps == ["outer continues", "inner"] and task.done()


def test_not_eager_when_the_loop_is_not_running(loop):
    steps = []

    async def handler():
        steps.append("ran")

    task = loop.create_eager_task(handler())
    assert steps == [] and not task.done()
    loop.run_until_complete(asyncio.wait_for(task, 5))
    assert steps == ["ran"]


def test_a_task_factory_is_honoured(loop):
    made = []

    def factory(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def handler():
        return "ok"

    loop.set_task_factory(factory)
    task = in_callback(loop, lambda: loop.create_eager_task(handler()))
    assert task in made  # (wait_for's own task is made by the factory too)
    assert loop.run_until_complete(asyncio.wait_for(task, 5)) == "ok"


# -- the server ------------------------------------------------------------------------------


def test_each_request_runs_as_its_own_task_with_its_own_context(serve):
    """With the first step run eagerly, an app must still see what asyncio promises:
    current_task() is its task (one per request) and context changes do not leak between
    requests on one connection."""
    tasks = []

    async def app(scope, receive, send):
        task = asyncio.current_task()
        tasks.append(task)
        before = var.get()
        var.set(scope["path"])
        body = f"{before} {task is not None} {threading.current_thread().name}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as c:
        bodies = []
        for path in ("/a", "/b", "/c"):
            c.send(request("GET", path))
            bodies.append(c.read_response().body)
    assert bodies == [b"unset True treadle-reactor"] * 3
    assert len({id(t) for t in tasks}) == 3


def test_a_request_that_waits_is_still_awaited_by_graceful_shutdown(serve):
    """A task that outlives its first step is in the server's set, which shutdown waits on."""
    release = threading.Event()
    started = threading.Event()

    async def app(scope, receive, send):
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"done"})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        assert started.wait(5)
        assert len(srv.state.tasks) == 1
        srv.server.request_shutdown()
        release.set()
        resp = c.read_response()
    assert (resp.status, resp.body) == (200, b"done")
    srv.stop()
    assert not srv.state.tasks
