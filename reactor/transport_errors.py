"""How a transport reports the error that ends it.

A peer resetting, vanishing or hanging up (ECONNRESET, EPIPE, EIO on a tty whose other side
closed...) is ordinary weather: `connection_lost(exc)` tells the protocol, and a traceback in
the log would only alarm, so an OSError is reported only in debug mode. Anything else is a bug
somewhere and goes to the loop's exception handler. Either way the transport then closes at
once, through its own `_force_close`.
"""

from __future__ import annotations


class FatalErrorReporting:
    """Mixin for a transport with `_loop`, `_protocol` and `_force_close(exc)`."""

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError) or self._loop.get_debug():
            self._loop.call_exception_handler(
                {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
            )
        self._force_close(exc)
