"""The bridge from a thread pool back to the reactor.

`run_in_executor` (the loop's, from the `Executors` mixin: the default pool, made on first
use, and its shutdown) submits work to a `concurrent.futures` pool and hands the caller an
asyncio future. The worker thread must never touch that future (asyncio futures are not
thread-safe): when the work finishes it only queues a callback with call_soon_threadsafe,
which wakes the reactor, and the reactor settles the future. Cancelling the asyncio future
cancels the pool's future too, so work that has not started never runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings


def wrap_concurrent_future(work: concurrent.futures.Future, loop) -> asyncio.Future:
    """An asyncio future on `loop` that settles when `work` does."""
    result = loop.create_future()
    result.add_done_callback(_Bridge(work).cancel_work)
    work.add_done_callback(_Bridge(result, loop).work_done)
    return result


class _Bridge:
    """One direction of the link between the two futures (a method, not a closure, per link)."""

    __slots__ = ("target", "loop")

    def __init__(self, target, loop=None) -> None:
        self.target = target
        self.loop = loop

    def cancel_work(self, result: asyncio.Future) -> None:
        # Runs in the reactor. Only a cancelled result cancels the work.
        if result.cancelled():
            self.target.cancel()

    def work_done(self, work: concurrent.futures.Future) -> None:
        # Runs in the worker thread (or at once if the work was already done).
        loop = self.loop
        if loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.settle, work)
        except RuntimeError:
            pass  # the loop closed between the check and the call: nobody is waiting any more

    def settle(self, work: concurrent.futures.Future) -> None:
        # Back in the reactor. A result cancelled meanwhile is stale: drop the completion.
        result = self.target
        if result.done():
            return
        if work.cancelled():
            result.cancel()
            return
        exc = work.exception()
        if exc is not None:
            result.set_exception(_as_asyncio_error(exc))
        else:
            result.set_result(work.result())


def _as_asyncio_error(exc: BaseException) -> BaseException:
    """concurrent.futures' own CancelledError/TimeoutError/InvalidStateError become asyncio's, as
    asyncio does.

    Work that waited on a cancelled concurrent future (run_coroutine_threadsafe of a task that was
    cancelled) must surface as asyncio.CancelledError, which `except CancelledError` catches; one
    that timed out waiting, as asyncio.TimeoutError (a class of its own before Python 3.11).
    """
    if type(exc) is concurrent.futures.CancelledError:
        return asyncio.CancelledError(*exc.args)
    if type(exc) is concurrent.futures.TimeoutError:
        return asyncio.TimeoutError(*exc.args)
    if type(exc) is concurrent.futures.InvalidStateError:
        return asyncio.InvalidStateError(*exc.args)
    return exc


class Executors:
    """The loop's thread pools: the default one, made on first use, and its shutdown."""

    def run_in_executor(self, executor, func, *args) -> asyncio.Future:
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="reactor-executor")
                self._default_executor = executor
        return wrap_concurrent_future(executor.submit(func, *args), self)

    def set_default_executor(self, executor) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout=None) -> None:
        """Wait for the default executor's threads, in a helper thread so the loop keeps running."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()
        thread = threading.Thread(target=self._join_executor, args=(executor, done), daemon=True)
        thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            warnings.warn(
                f"The executor did not finish joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

    def _join_executor(self, executor, done: asyncio.Future) -> None:
        try:
            executor.shutdown(wait=True)
            if not self._closed:
                self.call_soon_threadsafe(_set_result_unless_done, done, None)
        except Exception as exc:
            if not self._closed:
                self.call_soon_threadsafe(_set_exception_unless_done, done, exc)


def _set_result_unless_done(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception_unless_done(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
