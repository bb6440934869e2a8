"""Write-side flow control shared by the socket, pipe and datagram transports.

Every asyncio write transport keeps a buffer of what the OS would not take yet, and tells
its protocol `pause_writing()` when that buffer grows past a high watermark and
`resume_writing()` once it drains below a low one. A producer that honours these never
grows the buffer without bound, whatever the speed of the reader.
"""

from __future__ import annotations

# 64 KiB high / 16 KiB low: the defaults asyncio, Twisted and uvicorn share (REFERENCES.md §7).
DEFAULT_HIGH_WATER = 64 * 1024
# After this many writes to a closed transport, say so (the protocol is not listening to
# connection_lost); asyncio's threshold.
WARN_AFTER_WRITES_TO_CLOSED = 5


class WriteFlowControl:
    """Mixin for a transport with `_loop`, `_protocol` and `get_write_buffer_size()`."""

    _high_water = DEFAULT_HIGH_WATER
    _low_water = DEFAULT_HIGH_WATER // 4
    _protocol_paused = False

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        self._call_protocol("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self.get_write_buffer_size() > self._low_water:
            return
        self._protocol_paused = False
        self._call_protocol("resume_writing")

    def _call_protocol(self, method: str) -> None:
        try:
            getattr(self._protocol, method)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # A broken flow-control callback is the protocol's bug: report it, keep the transport.
            self._loop.call_exception_handler(
                {"message": f"protocol.{method}() failed", "exception": exc,
                 "transport": self, "protocol": self._protocol}
            )
