"""The loop itself: ready queue, timers, selector dispatch, cross-thread wake-ups.

One pass of the loop (`_run_once`) is the whole machine:

    1. ask the selector which file descriptors are ready, waiting no longer than the
       next timer's deadline (and not at all if callbacks are already queued);
    2. queue the reader/writer callbacks of the ready descriptors;
    3. queue the timers that have come due;
    4. run the callbacks that were queued when the pass began, and no more: callbacks
       they schedule wait for the next pass, so I/O is never starved.

Everything else an asyncio loop offers (sockets, servers, subprocesses, TLS...) is built
on `add_reader`/`add_writer`, `call_soon` and `call_at` by the mixins in this package.
Futures, tasks and handles are asyncio's own classes: they only need a loop to call.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from asyncio import events, futures, tasks
from selectors import EVENT_READ, EVENT_WRITE

from .executor import Executors
from .reporting import Reporting
from .selection import make_selector
from .timers import TimerHeap
from .transports import MAX_RECV
from .waker import Waker

logger = logging.getLogger("reactor")

# A blocking wait longer than a day is never needed: a timer that far out simply makes the
# loop wake once a day and wait again (epoll rejects timeouts past ~24.8 days anyway).
_MAX_SELECT_TIMEOUT = 24 * 3600
# asyncio.Task(..., eager_start=True) exists from 3.12; create_eager_task emulates it before.
_NATIVE_EAGER_TASKS = sys.version_info >= (3, 12)


def _env_debug() -> bool:
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


class CoreLoop(Executors, Reporting, asyncio.AbstractEventLoop):
    """The scheduling core of `Reactor`; see the module docstring for one pass of the loop."""

    # A loop whose __init__ failed (say, an unknown selector name) owns nothing: closed from the start.
    _closed = True

    def __init__(self, selector: str | None = None) -> None:
        self._selector = make_selector(selector)
        self.selector_name = type(self._selector).__name__.replace("Selector", "").lower()
        self._ready: collections.deque[events.Handle] = collections.deque()
        self._timers = TimerHeap()
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._closed = False
        self._stopping = False
        self._thread_id: int | None = None
        self._debug = _env_debug()
        self.slow_callback_duration = 0.1
        self._exception_handler = None
        self._task_factory = None
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        # fd -> transport that owns it, so add_reader/sock_* cannot steal a transport's socket.
        self._transports: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        # One receive buffer for all the loop's socket transports: a loop reads one socket at a
        # time, and each read copies out what arrived before the next one starts.
        self._read_buffer = memoryview(bytearray(MAX_RECV))
        # create_eager_task before 3.12: while it makes a Task, call_soon hands the task's
        # first step over here instead of queueing it (see there).
        self._capturing_step = False
        self._captured_step: tuple | None = None
        self._waker = Waker()
        self._selector.register(self._waker.fd, EVENT_READ, (events.Handle(self._waker.drain, (), self), None))

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} selector={self.selector_name} running={self.is_running()} "
            f"closed={self._closed} debug={self._debug}>"
        )

    # ------------------------------------------------------------------ running and stopping

    def run_forever(self) -> None:
        self._check_closed()
        self._check_not_running()
        old_agen_hooks = sys.get_asyncgen_hooks()
        self._thread_id = threading.get_ident()
        self._set_coroutine_origin_tracking(self._debug)
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook)
        asyncio._set_running_loop(self)
        try:
            while True:
                self._run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            asyncio._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future):
        self._check_closed()
        self._check_not_running()
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            # An exception we raise from here reaches the caller; don't also log it as never retrieved.
            future._log_destroy_pending = False
        future.add_done_callback(_stop_loop_of)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # mark it retrieved: the caller sees the loop's exception instead
            raise
        finally:
            future.remove_done_callback(_stop_loop_of)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def stop(self) -> None:
        """Finish the current pass (callbacks already queued run), then leave run_forever()."""
        self._stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._release_resources()
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        executor, self._default_executor = self._default_executor, None
        self._executor_shutdown_called = True
        if executor is not None:
            executor.shutdown(wait=False)
        self._selector.close()
        self._waker.close()

    def _release_resources(self) -> None:
        """Called by close() while the loop is still open: each mixin that owns OS resources
        (signal handlers, child processes...) releases them, then calls super()."""

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_not_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    # ------------------------------------------------------------------ one pass of the loop

    def _run_once(self) -> None:
        ready = self._ready
        timers = self._timers
        if ready or self._stopping:
            timeout = 0
        else:
            deadline = timers.next_deadline()
            if deadline is None:
                timeout = None
            else:
                timeout = min(max(0.0, deadline - time.monotonic()), _MAX_SELECT_TIMEOUT)

        for key, mask in self._selector.select(timeout):
            reader, writer = key.data
            if mask & EVENT_READ and reader is not None:
                if reader._cancelled:
                    self._remove_reader(key.fd)
                else:
                    ready.append(reader)
            if mask & EVENT_WRITE and writer is not None:
                if writer._cancelled:
                    self._remove_writer(key.fd)
                else:
                    ready.append(writer)

        # The clock's resolution is added so a timer due "now" is not left for one more pass.
        timers.pop_due(time.monotonic() + self._clock_resolution, ready)

        # Only what is queued now: callbacks scheduled by these run on the next pass.
        if self._debug:
            self._run_ready_debug(len(ready))
            return
        popleft = ready.popleft
        for _ in range(len(ready)):
            handle = popleft()
            if not handle._cancelled:
                handle._run()
        # Let go of the last handle run. A frame that outlives its call (one in a traceback kept
        # by an exception, say) keeps its callers' frames and their locals alive: this frame's
        # `handle` would keep the last callback's task, and the error it finished with, in a cycle
        # (anyio's test_exception_refcycles_parent_task on 3.13; asyncio's loop does the same).
        handle = None

    def _run_ready_debug(self, count: int) -> None:
        popleft = self._ready.popleft
        for _ in range(count):
            handle = popleft()
            if handle._cancelled:
                continue
            started = time.monotonic()
            handle._run()
            took = time.monotonic() - started
            if took >= self.slow_callback_duration:
                logger.warning("Executing %s took %.3f seconds", _describe_handle(handle), took)
        handle = None  # as in _run_once: no cycle through this frame's locals

    # ------------------------------------------------------------------ scheduling callbacks

    def time(self) -> float:
        return time.monotonic()

    # The scheduling calls below are the loop's hottest code: a busy server makes one per
    # callback and several per request. Debug-only work (thread and callback checks, trimming
    # the creation traceback to end at the caller) stays behind one `self._debug` test, and the
    # closed check is inlined rather than a method call.

    def call_soon(self, callback, *args, context=None) -> events.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._capturing_step:
            # Task() is scheduling its first step for create_eager_task, which runs it at
            # once: no Handle, no trip through the ready queue. Task() ignores what
            # call_soon returns (C and Python alike), and nothing else runs meanwhile.
            self._capturing_step = False
            self._captured_step = (callback, context)
            return None
        handle = events.Handle(callback, args, self, context)
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
            del handle._source_traceback[-1]
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback, *args, context=None) -> events.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = events.Handle(callback, args, self, context)
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
            del handle._source_traceback[-1]
        # deque.append is atomic, so the queue itself needs no lock; the wake-up makes a
        # loop blocked in select() see the new entry at once.
        self._ready.append(handle)
        self._waker.wake()
        return handle

    def call_later(self, delay, callback, *args, context=None) -> events.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self._schedule(time.monotonic() + delay, callback, args, context, "call_later")

    def call_at(self, when, callback, *args, context=None) -> events.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        return self._schedule(when, callback, args, context, "call_at")

    def _schedule(self, when, callback, args, context, method: str) -> events.TimerHandle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer = events.TimerHandle(when, callback, args, self, context)
        if self._debug:
            self._check_thread()
            self._check_callback(callback, method)
            del timer._source_traceback[-2:]  # this frame and call_later/call_at: end at the caller
        self._timers.push(timer)
        return timer

    def _timer_handle_cancelled(self, handle: events.TimerHandle) -> None:
        """Called by TimerHandle.cancel() for a handle still in the heap."""
        if handle._scheduled:
            self._timers.cancelled(handle)

    def _check_callback(self, callback, method: str) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    def _check_thread(self) -> None:
        """In debug mode, catch non-threadsafe calls made from a thread the loop is not running in."""
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    # ------------------------------------------------------------------ futures and tasks

    def create_future(self) -> asyncio.Future:
        return futures.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None, **kwargs) -> asyncio.Task:
        self._check_closed()
        if context is not None:
            if sys.version_info < (3, 11):  # asyncio.Task takes no context before 3.11
                raise TypeError("create_task() got an unexpected keyword argument 'context'")
            kwargs["context"] = context
        if self._task_factory is None:
            task = tasks.Task(coro, loop=self, name=name, **kwargs)
            if task._source_traceback:
                del task._source_traceback[-1]
        else:
            task = self._task_factory(self, coro, **kwargs)
            if name is not None:
                task.set_name(name)
        return task

    def create_eager_task(self, coro) -> asyncio.Task:
        """A task whose first step runs now, inside this call, instead of on the next pass.

        Python 3.12's eager tasks, on every version we support. A request handler that does
        not need to wait (its response fits in the socket buffer) then runs to completion
        within the read callback that parsed the request: no trip through the ready queue,
        no extra select(). The step runs as the task, so current_task() and the task's copy
        of the context are exactly what create_task() gives.

        Inside another task's step the new task is scheduled as usual: there, running it
        at once would nest one task in another, and a chain of them (pipelined requests,
        each started as the one before finishes) would recurse as deep as the chain is long.
        """
        if self._task_factory is not None or not self.is_running() or tasks.current_task(self) is not None:
            return self.create_task(coro)
        if _NATIVE_EAGER_TASKS:
            return tasks.Task(coro, loop=self, eager_start=True)
        # Task() schedules its first step with call_soon, the one call_soon it makes: that
        # call hands the step back here (call_soon, above) instead of queueing a Handle.
        self._capturing_step = True
        try:
            task = tasks.Task(coro, loop=self)
        finally:
            self._capturing_step = False
        step, context = self._captured_step
        self._captured_step = None
        # What Handle._run would do. A task's step reports its errors to the task itself;
        # only SystemExit and KeyboardInterrupt come out of it, and they must propagate.
        context.run(step)
        return task

    def set_task_factory(self, factory) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self):
        return self._task_factory

    # ------------------------------------------------------------------ readiness callbacks

    def add_reader(self, fd, callback, *args) -> None:
        self._check_closed()
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def add_writer(self, fd, callback, *args) -> None:
        self._check_closed()
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_reader(self, fd) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def remove_writer(self, fd) -> bool:
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    def _ensure_fd_no_transport(self, fd) -> None:
        fileno = _fileno(fd)
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    def _add_reader(self, fd, callback, *args) -> events.Handle:
        return self._watch(fd, EVENT_READ, events.Handle(callback, args, self, None))

    def _add_writer(self, fd, callback, *args) -> events.Handle:
        return self._watch(fd, EVENT_WRITE, events.Handle(callback, args, self, None))

    def _watch(self, fd, event: int, handle: events.Handle) -> events.Handle:
        self._check_closed()
        selector = self._selector
        try:
            key = selector.get_key(fd)
        except KeyError:
            selector.register(fd, event, (handle, None) if event == EVENT_READ else (None, handle))
            return handle
        reader, writer = key.data
        old = reader if event == EVENT_READ else writer
        data = (handle, writer) if event == EVENT_READ else (reader, handle)
        try:
            selector.modify(fd, key.events | event, data)
        except OSError:
            # The fd was closed and its number reused behind our back: the kernel forgot the
            # old registration, the selector's map did not. Start afresh for the new file.
            self._forget_stale_fd(fd)
            selector.register(fd, event, (handle, None) if event == EVENT_READ else (None, handle))
        if old is not None:
            old.cancel()
        return handle

    def _remove_reader(self, fd) -> bool:
        return self._unwatch(fd, EVENT_READ)

    def _remove_writer(self, fd) -> bool:
        return self._unwatch(fd, EVENT_WRITE)

    def _unwatch(self, fd, event: int) -> bool:
        if self._closed:
            return False
        try:
            key = self._selector.get_key(fd)
        except KeyError:
            return False
        reader, writer = key.data
        handle = reader if event == EVENT_READ else writer
        remaining = key.events & ~event
        try:
            if remaining:
                data = (None, writer) if event == EVENT_READ else (reader, None)
                self._selector.modify(fd, remaining, data)
            else:
                self._selector.unregister(fd)
        except OSError:
            self._forget_stale_fd(fd)
        if handle is None:
            return False
        handle.cancel()
        return True

    def _forget_stale_fd(self, fd) -> None:
        # Only the kernel-side backends (epoll, kqueue, devpoll) can fail a modify this way, and
        # their unregister() already ignores the kernel's "no such registration".
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass  # not registered (any more): registering afresh is all that is left to do

    def __del__(self, _warn=warnings.warn) -> None:
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()


def _fileno(fileobj) -> int:
    if isinstance(fileobj, int):
        return fileobj
    try:
        return int(fileobj.fileno())
    except (AttributeError, TypeError, ValueError):
        raise ValueError(f"Invalid file object: {fileobj!r}") from None


def _describe_handle(handle: events.Handle) -> str:
    callback = handle._callback
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return repr(task)
    return repr(handle)


def _stop_loop_of(future: asyncio.Future) -> None:
    future.get_loop().stop()
