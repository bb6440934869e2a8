"""Entry points in uvloop's shape: new_event_loop(), run(), EventLoopPolicy.

`run()` does what asyncio.run() does, on a Reactor, and never touches the thread's
current-loop setting or the global policy: the loop is private to the call.
"""

from __future__ import annotations

import asyncio
from asyncio import events

from .loop import Reactor

_BasePolicy = getattr(events, "BaseDefaultEventLoopPolicy", None) or events._BaseDefaultEventLoopPolicy


def new_event_loop(selector: str | None = None) -> Reactor:
    """A new Reactor using the named selector backend (default: the best available)."""
    return Reactor(selector)


class EventLoopPolicy(_BasePolicy):
    """Makes asyncio.new_event_loop() / get_event_loop() hand out Reactors."""

    def _loop_factory(self) -> Reactor:
        return Reactor()


def run(main, *, debug: bool | None = None, selector: str | None = None):
    """Run coroutine `main` to completion on a new Reactor, then close it cleanly."""
    if asyncio._get_running_loop() is not None:
        raise RuntimeError("reactor.run() cannot be called from a running event loop")
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = Reactor(selector)
    try:
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _cancel_all_tasks(loop: Reactor) -> None:
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in pending:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during reactor.run() shutdown",
                "exception": task.exception(),
                "task": task,
            })
