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

NO_TIMER = 0  # each protocol's deadline kinds are an IntEnum whose NONE is this


class ConnectionControl:
    """Mixin for a Protocol with `transport` and `loop` attributes. Runs in the reactor thread.

    Deadlines are kept lazily, because a keep-alive connection arms one and disarms it on
    every request: the armed TimerHandle stays in the loop's heap while the deadline moves,
    and when it fires it either acts, re-arms for the later deadline, or (disarmed) does
    nothing. So a request costs no heap operation, and a connection at most one wake-up per
    deadline period. Only a deadline earlier than the armed one replaces the handle.
    `_drop_timer` really cancels: for a connection that is gone.
    """

    transport: Any
    loop: asyncio.AbstractEventLoop
    _read_paused = False
    _timer: asyncio.TimerHandle | None = None
    _timer_kind = NO_TIMER
    _deadline = 0.0

    def _pause_reading(self) -> None:
        if not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()

    def _set_timer(self, kind: int, delay: float) -> None:
        self._timer_kind = kind
        self._deadline = deadline = self.loop.time() + delay
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return  # it fires first, and _on_timer re-arms for the rest
            timer.cancel()
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        self._timer_kind = NO_TIMER

    def _drop_timer(self) -> None:
        self._timer_kind = NO_TIMER
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        fired_at = self._timer.when()
        self._timer = None
        kind = self._timer_kind
        if kind == NO_TIMER:
            return
        if self._deadline > fired_at:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        self._timer_kind = NO_TIMER
        self._timer_fired(kind)

    def _timer_fired(self, kind: int) -> None:
        raise NotImplementedError
