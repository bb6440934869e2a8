"""What every connection protocol does to its transport: pause and resume reading, and keep
one deadline at a time.

An HTTP/1.1 connection has several deadlines (request head, keep-alive, lingering close) and
a WebSocket session has others (ping, pong, close handshake), but only one applies at any
moment. So each connection holds a single TimerHandle: arming a deadline of another kind
replaces the one before, and the subclass says in `_timer_fired(kind)` what expiry means.
"""

from __future__ import annotations

import asyncio
from typing import Any

NO_TIMER = 0


class ConnectionControl:
    """Mixin for a Protocol with `transport` and `loop` attributes. Runs in the reactor thread."""

    transport: Any
    loop: asyncio.AbstractEventLoop
    _read_paused = False
    _timer: asyncio.TimerHandle | None = None
    _timer_kind = NO_TIMER

    def _pause_reading(self) -> None:
        if not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()

    def _set_timer(self, kind: int, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_kind = kind
        self._timer = self.loop.call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_kind = NO_TIMER

    def _on_timer(self) -> None:
        kind = self._timer_kind
        self._timer = None
        self._timer_kind = NO_TIMER
        self._timer_fired(kind)

    def _timer_fired(self, kind: int) -> None:
        raise NotImplementedError
