"""How a transport reports the error that ends it, and delivers `connection_made`.

A peer resetting, vanishing or hanging up (ECONNRESET, EPIPE, EIO on a tty whose other side
closed...) is ordinary weather: `connection_lost(exc)` tells the protocol, which is where the
error belongs, and it never reaches the loop's exception handler (in debug mode it is logged
at DEBUG level). Code that treats every exception-handler call as a failure, as anyio's test
runner does, must not see a reset there. Anything else is a bug somewhere and goes to the
exception handler. Either way the transport then closes at once, through its own `_force_close`.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("reactor")
# The warnings asyncio's own transports log go to asyncio's logger here too, so an app's logging
# setup for asyncio applies whichever loop it runs on.
asyncio_logger = logging.getLogger("asyncio")


class FatalErrorReporting:
    """Mixin for a transport with `_loop`, `_protocol` and `_force_close(exc)`."""

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=exc)
        else:
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)

    def _connection_made(self, waiter) -> bool:
        """Deliver `connection_made` and settle the waiter either way. False if the protocol
        failed: the transport is then closed, and reading must not begin."""
        try:
            self._protocol.connection_made(self)
        except BaseException as exc:
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self._fatal_error(exc, "Fatal error: protocol.connection_made() call failed.")
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: after the transport is cleaned up
            return False
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True
