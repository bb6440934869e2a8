"""The private parts of asyncio the Reactor still relies on, each pinned: on a Python where one
changed, this fails loudly and names it, instead of the loop misbehaving somewhere downstream.

docs/reactor-conformance.md lists them with why each stays (and which were replaced). Every
test here checks the behaviour the Reactor uses, not merely that a name exists.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import ssl
import sys
from asyncio import constants, sslproto, staggered, trsock

import pytest

from treadle import reactor


class FakeLoop:
    """The least a loop must offer asyncio's Handle, TimerHandle, Future and Task."""

    def __init__(self, debug: bool = False) -> None:
        self.debug = debug
        self.soon: list = []
        self.errors: list = []
        self.cancelled_timers: list = []

    def get_debug(self) -> bool:
        return self.debug

    def call_soon(self, callback, *args, context=None):
        handle = asyncio.Handle(callback, args, self, context)
        self.soon.append(handle)
        return handle

    def call_exception_handler(self, context) -> None:
        self.errors.append(context)

    def _timer_handle_cancelled(self, handle) -> None:
        self.cancelled_timers.append(handle)


VAR = contextvars.ContextVar("VAR", default="default")


def test_handle_run_calls_back_in_its_context_and_reports_errors_to_the_loop() -> None:
    # Handle._run: how _run_once runs every callback (core.py, introspect.py).
    loop = FakeLoop()
    seen = []
    context = contextvars.copy_context()
    context.run(VAR.set, "handle's")
    asyncio.Handle(lambda: seen.append(VAR.get()), (), loop, context)._run()
    assert seen == ["handle's"]

    def fail() -> None:
        raise ZeroDivisionError

    failing = asyncio.Handle(fail, (), loop, None)
    failing._run()
    assert [error["handle"] for error in loop.errors] == [failing]
    assert isinstance(loop.errors[0]["exception"], ZeroDivisionError)


def test_handle_cancelled_and_callback_attributes() -> None:
    # Handle._cancelled (read per callback in _run_once, a method call would cost there) and
    # Handle._callback (how create_eager_task finds a task's step, and how slow callbacks are named).
    def callback() -> None:
        pass

    handle = asyncio.Handle(callback, (), FakeLoop(), None)
    assert handle._cancelled is False and handle._callback is callback
    handle.cancel()
    assert handle._cancelled is True and handle.cancelled()


def test_timer_handle_scheduled_slot_and_cancel_hook() -> None:
    # TimerHandle._scheduled is the loop's to set (timers.py marks what is in its heap), and
    # TimerHandle.cancel() tells the loop through loop._timer_handle_cancelled(handle), before
    # it marks itself cancelled (TimerHeap.cancelled relies on that order).
    loop = FakeLoop()
    timer = asyncio.TimerHandle(1.0, print, (), loop, None)
    assert timer._scheduled is False
    timer._scheduled = True
    states = []
    loop._timer_handle_cancelled = lambda handle: states.append(handle.cancelled())
    timer.cancel()
    assert states == [False]
    assert timer.cancelled()


def test_handle_source_traceback_in_debug_mode() -> None:
    # _source_traceback: trimmed in debug mode so it ends at the caller, not inside the loop.
    handle = asyncio.Handle(print, (), FakeLoop(debug=True), None)
    assert isinstance(handle._source_traceback, list) and handle._source_traceback
    assert asyncio.Handle(print, (), FakeLoop(), None)._source_traceback is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ starts tasks eagerly with eager_start=True")
@pytest.mark.parametrize("task_class", [asyncio.tasks._PyTask, getattr(asyncio.tasks, "_CTask", None)],
                         ids=["python", "c"])
def test_a_new_tasks_first_step_is_a_call_soon_whose_callback_belongs_to_the_task(task_class) -> None:
    # Before 3.12, create_eager_task relies on Task() scheduling its first step with one
    # call_soon (which it has hand the step back instead of queueing it): a step of the task's.
    if task_class is None:
        pytest.skip("no C tasks here (PyPy)")

    async def coro() -> None:
        pass

    loop = FakeLoop()
    task = task_class(coro(), loop=loop)
    assert [getattr(handle._callback, "__self__", None) for handle in loop.soon] == [task]
    task._log_destroy_pending = False
    coro_object = task.get_coro()
    coro_object.close()


def test_task_log_destroy_pending_attribute() -> None:
    # run_until_complete sets it on a task it made, as asyncio's loop does: an exception the
    # caller sees must not also be logged as "Task was destroyed but it is pending".
    async def main() -> bool:
        task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
        assert task._log_destroy_pending is True
        task._log_destroy_pending = False
        await task
        return task._log_destroy_pending

    assert reactor.run(main()) is False


def test_sslproto_constructor_and_app_transport() -> None:
    # TLS is asyncio's SSLProtocol over our socket transport (network.py).
    parameters = inspect.signature(sslproto.SSLProtocol).parameters
    expected = ["loop", "app_protocol", "sslcontext", "waiter", "server_side", "server_hostname",
                "call_connection_made", "ssl_handshake_timeout"]
    if sys.version_info >= (3, 11):
        expected.append("ssl_shutdown_timeout")
    assert list(parameters)[: len(expected)] == expected

    async def main() -> None:
        loop = asyncio.get_running_loop()
        protocol = sslproto.SSLProtocol(loop, asyncio.Protocol(), ssl.create_default_context(),
                                        loop.create_future(), False, "localhost")
        app_transport = protocol._app_transport
        assert isinstance(app_transport, asyncio.Transport)
        # The markers loop.start_tls() and loop.sendfile() read (TLS in TLS from 3.11, where
        # asyncio's TLS transport says it can carry TLS; write-based sendfile).
        assert getattr(app_transport, "_start_tls_compatible", False) is (sys.version_info >= (3, 11))
        assert app_transport._sendfile_compatible is constants._SendfileMode.FALLBACK

    reactor.run(main())


def test_sendfile_mode_markers() -> None:
    assert {mode.name for mode in constants._SendfileMode} >= {"UNSUPPORTED", "TRY_NATIVE", "FALLBACK"}


def test_transport_socket_wraps_a_socket() -> None:
    import socket

    with socket.socket() as sock:
        wrapped = trsock.TransportSocket(sock)
        assert wrapped.fileno() == sock.fileno()


def test_staggered_race_takes_the_loop() -> None:
    # Happy eyeballs (create_connection(happy_eyeballs_delay=...)) is asyncio's staggered_race.
    parameters = inspect.signature(staggered.staggered_race).parameters
    assert list(parameters)[:2] == ["coro_fns", "delay"]
    assert parameters["loop"].kind is inspect.Parameter.KEYWORD_ONLY

    async def main():
        async def first():
            return "won"

        return await staggered.staggered_race([first], 0.1, loop=asyncio.get_running_loop())

    winner, index, _ = reactor.run(main())
    assert (winner, index) == ("won", 0)


def test_the_running_loop_hooks_asyncio_exports_for_loop_implementations() -> None:
    assert asyncio._get_running_loop() is None
    marker = object()
    asyncio._set_running_loop(marker)
    try:
        assert asyncio._get_running_loop() is marker
    finally:
        asyncio._set_running_loop(None)
