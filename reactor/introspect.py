"""Watching the loop work: live counters (`enable_stats`) and a per-poll trace (`enable_trace`).

Both are installed on a loop that already exists, and cost nothing until they are: the loop
only ever calls `self._selector.select(timeout)`, then `self._ready.popleft()` and the handle's
`_run()`, so wrapping those objects observes every pass without a single `if` on the loop's
own path.

    stats = enable_stats(loop)        # loop iterations, events per poll, poll vs callback time...
    stats.snapshot()                  # a plain dict, like trio's statistics()
    enable_trace(loop, write_line)    # one record per poll: timeout, ready fds, callbacks run

`Introspection` offers the same as methods of the loop (`loop.enable_stats()`), for the
Reactor class to inherit.

Discussion — where the time goes. One pass of the loop is `select()` followed by running the
batch of ready callbacks. So the time from one `select()` returning to the next one starting
is the loop's own work (dispatch, timers, callbacks), and the time inside `select()` is time
the process spent waiting for the kernel. A loop that is mostly waiting has spare capacity; a
loop whose callback share approaches 100% is saturated, whatever the CPU graph says.

Only the loop's thread touches the counters; a snapshot from another thread reads integers
and floats the GIL keeps whole, so it may be a pass out of date but never torn.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from selectors import EVENT_READ, EVENT_WRITE, BaseSelector
from typing import Any, Callable

from .core import CoreLoop

_clock = time.perf_counter


def enable_stats(loop: CoreLoop) -> LoopStats:
    """Start counting on `loop` (idempotent) and return its `LoopStats`."""
    stats = getattr(loop, "_introspect_stats", None)
    if stats is None:
        stats = LoopStats(loop)
        loop._selector = _CountingSelector(loop._selector, stats)
        loop._introspect_stats = stats
    return stats


def enable_trace(loop: CoreLoop, write: Callable[[dict[str, Any]], None]) -> PollTracer:
    """Call `write(record)` once per poll of `loop`; see `PollTracer` for the record."""
    tracer = PollTracer(loop, write)
    loop._selector = _TracingSelector(loop._selector, tracer)
    # Swap in a ready queue that notes when each callback is taken, keeping what is queued.
    loop._ready = _TimedDeque(loop._ready, tracer)
    return tracer


class Introspection:
    """The public face on the loop class: `loop.enable_stats()`, `loop.enable_trace(write)`."""

    def enable_stats(self) -> LoopStats:
        """Start counting (idempotent); `.snapshot()` on the result reads the counters."""
        return enable_stats(self)

    def enable_trace(self, write: Callable[[dict[str, Any]], None]) -> PollTracer:
        """Call `write(record)` once per poll; see `PollTracer` for the record."""
        return enable_trace(self, write)


class LoopStats:
    """Counters of one loop since `enable_stats`; read them with `snapshot()`."""

    def __init__(self, loop: CoreLoop) -> None:
        self._loop = loop
        self.started = _clock()
        self.iterations = 0
        self.events = 0  # (fd, mask) pairs reported by all polls
        self.max_events = 0  # the most reported by one poll
        self.poll_time = 0.0  # seconds inside select()
        self.callback_time = 0.0  # seconds between one select() returning and the next starting
        self.polling_since: float | None = None  # set while the loop waits in select()

    def snapshot(self) -> dict[str, Any]:
        """The counters now, plus the ready-queue length and live timers at this instant."""
        loop = self._loop
        iterations = self.iterations
        poll_time = self.poll_time
        polling_since = self.polling_since
        if polling_since is not None:
            poll_time += max(0.0, _clock() - polling_since)  # an idle loop is waiting right now
        total = poll_time + self.callback_time
        return {
            "selector": loop.selector_name,
            "uptime_s": _clock() - self.started,
            "iterations": iterations,
            "events": self.events,
            "events_per_poll": self.events / iterations if iterations else 0.0,
            "max_events_per_poll": self.max_events,
            "poll_time_s": poll_time,
            "callback_time_s": self.callback_time,
            "poll_share": poll_time / total if total else 0.0,
            "ready_queue": len(loop._ready),
            "timers_pending": len(loop._timers),
        }


class _SelectorProxy:
    """Forwards everything to the real selector; subclasses wrap `select()`."""

    def __init__(self, selector: BaseSelector) -> None:
        self._inner = selector
        # Bound once: registrations happen on every connection and must not pay __getattr__.
        self.register = selector.register
        self.unregister = selector.unregister
        self.modify = selector.modify
        self.get_key = selector.get_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CountingSelector(_SelectorProxy):
    def __init__(self, selector: BaseSelector, stats: LoopStats) -> None:
        super().__init__(selector)
        self._stats = stats
        self._returned: float | None = None

    def select(self, timeout: float | None = None) -> list:
        stats = self._stats
        entered = _clock()
        if self._returned is not None:
            stats.callback_time += entered - self._returned
        stats.polling_since = entered
        ready = self._inner.select(timeout)
        returned = self._returned = _clock()
        stats.polling_since = None
        stats.poll_time += returned - entered
        stats.iterations += 1
        count = len(ready)
        stats.events += count
        if count > stats.max_events:
            stats.max_events = count
        return ready


class PollTracer:
    """Builds one record per poll and hands it to `write` when the poll's callbacks are done.

    A record (times in milliseconds, `t_ms` since tracing began)::

        {"poll": 7, "t_ms": 12.5, "timeout_ms": 4999.1 | null, "wait_ms": 3.2,
         "queued": 0,                                # callbacks already waiting before the poll
         "events": [{"fd": 9, "events": ["READ"], "handler": "SocketTransport._read_ready"}],
         "callbacks": [{"name": "SocketTransport._read_ready", "ms": 0.04}, ...]}

    It is written when the next poll begins, and by `flush()`.
    """

    def __init__(self, loop: CoreLoop, write: Callable[[dict[str, Any]], None]) -> None:
        self._loop = loop
        self._write = write
        self._origin = _clock()
        self._polls = 0
        self._record: dict[str, Any] | None = None

    def poll_starting(self, timeout: float | None) -> float:
        now = _clock()
        self.flush()
        self._polls += 1
        self._record = {
            "poll": self._polls,
            "t_ms": _ms(now - self._origin),
            "timeout_ms": None if timeout is None else _ms(timeout),
            "queued": len(self._loop._ready),
        }
        return _clock()  # after writing the previous record: its cost is not waiting time

    def poll_returned(self, entered: float, ready: list) -> None:
        record = self._record
        record["wait_ms"] = _ms(_clock() - entered)
        record["events"] = [_describe_event(key, mask) for key, mask in ready]
        record["callbacks"] = []

    def callback_ran(self, callback: Any, seconds: float) -> None:
        record = self._record
        if record is not None and "callbacks" in record:  # None before the first poll
            record["callbacks"].append({"name": describe_callback(callback), "ms": _ms(seconds)})

    def flush(self) -> None:
        """Write the poll in progress now (on shutdown, or before reading a trace mid-run)."""
        record, self._record = self._record, None
        if record is not None and "callbacks" in record:
            self._write(record)


class _TracingSelector(_SelectorProxy):
    def __init__(self, selector: BaseSelector, tracer: PollTracer) -> None:
        super().__init__(selector)
        self._tracer = tracer

    def select(self, timeout: float | None = None) -> list:
        entered = self._tracer.poll_starting(timeout)
        ready = self._inner.select(timeout)
        self._tracer.poll_returned(entered, ready)
        return ready


class _TimedDeque(collections.deque):
    """The ready queue, handing the loop each handle wrapped so that running it is timed."""

    def __init__(self, items: Any, tracer: PollTracer) -> None:
        super().__init__(items)
        self._tracer = tracer

    def popleft(self) -> Any:
        return _TimedHandle(super().popleft(), self._tracer)


class _TimedHandle:
    """Stands in for a Handle where the loop runs it: `_cancelled`, `_run()`, the rest forwarded."""

    __slots__ = ("_handle", "_tracer")

    def __init__(self, handle: Any, tracer: PollTracer) -> None:
        self._handle = handle
        self._tracer = tracer

    @property
    def _cancelled(self) -> bool:
        return self._handle._cancelled

    def _run(self) -> None:
        callback = self._handle._callback  # taken first: cancelling a handle, even while it runs, clears it
        started = _clock()
        try:
            self._handle._run()
        finally:
            self._tracer.callback_ran(callback, _clock() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def describe_callback(callback: Any) -> str:
    """A short readable name: `Class.method`, `task <name> (coro)` or the function's name."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {owner.get_name()} ({getattr(coro, '__qualname__', coro)})"
    name = getattr(callback, "__qualname__", None) or getattr(callback, "__name__", None)
    return name or type(callback).__name__


def describe_mask(mask: int) -> list[str]:
    """Selector event bits as words: READ, WRITE."""
    return [word for bit, word in ((EVENT_READ, "READ"), (EVENT_WRITE, "WRITE")) if mask & bit]


def _describe_event(key: Any, mask: int) -> dict[str, Any]:
    reader, writer = key.data
    handler = reader if mask & EVENT_READ and reader is not None else writer
    return {
        "fd": key.fd,
        "events": describe_mask(mask),
        "handler": describe_callback(handler._callback) if handler is not None else None,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def format_record(record: dict[str, Any]) -> str:
    """A record as text: one line for the poll, then one indented line per callback run."""
    timeout = "forever" if record["timeout_ms"] is None else f"{record['timeout_ms']:.1f}ms"
    events = ", ".join(
        f"fd {e['fd']} {'|'.join(e['events'])}" + (f" -> {e['handler']}" if e["handler"] else "")
        for e in record["events"]
    )
    lines = [
        f"poll #{record['poll']} at {record['t_ms']:.1f}ms: timeout {timeout}, waited {record['wait_ms']:.3f}ms, "
        f"{len(record['events'])} ready" + (f" [{events}]" if events else "")
        + (f", {record['queued']} already queued" if record["queued"] else "")
    ]
    lines.extend(f"    {c['ms']:8.3f}ms  {c['name']}" for c in record["callbacks"])
    return "\n".join(lines)


def trace_writer(stream: Any, as_json: bool) -> Callable[[dict[str, Any]], None]:
    """A `write` for `enable_trace`: JSON Lines, or `format_record` text, to `stream`."""
    if as_json:
        def write(record: dict[str, Any]) -> None:
            stream.write(json.dumps(record, separators=(",", ":")) + "\n")
    else:
        def write(record: dict[str, Any]) -> None:
            stream.write(format_record(record) + "\n")
    return write
