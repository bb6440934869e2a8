"""What a loop reports and keeps on the side: unhandled errors (the exception handler, asyncio's
API for it), debug mode, and the async generators it must close at shutdown.

A mixin of the loop (reactor/core.py), as the rest of this package's parts are: the loop's
``__init__`` sets the state (``_exception_handler``, ``_debug``, ``_asyncgens``...), these
methods read and change it. Reports keep asyncio's logger, so an app's logging set up for
asyncio applies whichever loop it runs on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
import warnings

logger = logging.getLogger("reactor")
asyncio_logger = logging.getLogger("asyncio")

_DEBUG_STACK_DEPTH = 10


class Reporting:
    """Errors, debug mode and async generators (reactor thread, except where asyncio says)."""

    # ------------------------------------------------------------------ async generators

    def _asyncgen_firstiter_hook(self, agen) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after loop.shutdown_asyncgens() call",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        if not self._asyncgens:
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[agen.aclose() for agen in closing], return_exceptions=True)
        for result, agen in zip(results, closing):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # ------------------------------------------------------------------ errors and debug mode

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict) -> None:
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info = (type(exception), exception, exception.__traceback__) if exception is not None else False
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                tb = "".join(traceback.format_list(value)).rstrip()
                lines.append(f"Object created at (most recent call last):\n{tb}")
            else:
                lines.append(f"{key}: {value!r}")
        asyncio_logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict) -> None:
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # Reporting must never take the loop down, even with a broken logging setup.
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            run_in = _context_of(context)
            if run_in is None:
                self._exception_handler(self, context)
            else:
                run_in.run(self._exception_handler, self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {"message": "Unhandled error in exception handler", "exception": exc, "context": context}
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler while handling an unexpected "
                             "error in custom exception handler", exc_info=True)

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        sys.set_coroutine_origin_tracking_depth(_DEBUG_STACK_DEPTH if enabled else 0)


def _context_of(context: dict):
    """The contextvars.Context a custom exception handler runs in: that of the task, future or
    handle the error came from, so the handler sees the values the failing code set (what
    asyncio does from Python 3.12, gh-96704). Tasks and handles have `get_context()` from 3.12
    on; before, and for anything else, the handler runs in the loop's own context.
    """
    for key in ("task", "future", "handle"):
        source = context.get(key)
        if source is not None:
            get_context = getattr(source, "get_context", None)
            return get_context() if get_context is not None else None
    return None
