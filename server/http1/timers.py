"""What every connection protocol does to its transport: pause and resume reading, write
(counting what it wrote, for the send deadline), and keep one deadline at a time.

An HTTP/1.1 connection has several deadlines (request head, keep-alive, lingering close) and
a WebSocket session has others (ping, pong, close handshake), but only one applies at any
moment. So each connection holds a single TimerHandle: arming a deadline of another kind
replaces the one before, and the subclass says in `_timer_fired(kind)` what expiry means.
"""

from __future__ import annotations

import asyncio
from typing import Any

from treadle.server.tls import tls_extension

NO_TIMER = 0  # each protocol's deadline kinds are an IntEnum whose NONE is this
# Held writes go out at once when they, with what the transport buffers, reach this much:
# the transport's high-water mark, so that holding never lets more pile up than writing
# each response at once would.
HOLD_LIMIT = 64 * 1024


class ConnectionControl:
    """Mixin for a Protocol with `transport`, `loop`, `config` and `state` attributes, and a
    `SEND_DEADLINE` kind. Runs in the reactor thread.

    Deadlines are kept lazily, because a keep-alive connection arms one and disarms it on
    every request: the armed TimerHandle stays in the loop's heap while the deadline moves,
    and when it fires it either acts, re-arms for the later deadline, or (disarmed) does
    nothing. So a request costs no heap operation, and a connection at most one wake-up per
    deadline period. Only a deadline earlier than the armed one replaces the handle.
    `_drop_timer` really cancels: for a connection that is gone.
    """

    transport: Any
    loop: asyncio.AbstractEventLoop
    config: Any  # the Config: timeout_send
    state: Any  # the ServerState: its stats count bytes out
    SEND_DEADLINE = NO_TIMER  # the protocol's deadline kind for the send deadline
    _read_paused = False
    _timer: asyncio.TimerHandle | None = None
    _timer_kind = NO_TIMER
    _deadline = 0.0
    _written = 0  # bytes handed to the transport (``_write``), for the send deadline
    _taken_mark = 0
    _held: bytes | None = None  # while not None, what ``_write`` gathers for ``_send_held``

    def _take_transport(self, transport: Any, high: int, low: int) -> None:
        """``connection_made``'s common part: keep the transport and its write-buffer marks,
        join the server's connections, and note the client's and our addresses and the ASGI
        TLS extension (the same for every request the connection carries)."""
        self.transport = transport
        transport.set_write_buffer_limits(high, low)
        self.state.connections.add(self)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, (tuple, list)) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("sockname")
        if isinstance(sock, (tuple, list)) and len(sock) >= 2:
            self.server = (str(sock[0]), int(sock[1]))
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls = tls_extension(ssl_object, self.state.server_cert)

    def _pause_reading(self) -> None:
        if not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()

    def _write(self, data: bytes, head: bytes = b"") -> None:
        """Everything the protocol sends goes through here (counted for the send deadline);
        between ``_hold_writes`` and ``_send_held``, gathered to go out in one write.
        ``head``: what goes before ``data`` (a response's head): joined to a small ``data``,
        written beside a large one (``writelines``: one ``sendmsg``, no copy of the body)."""
        if head and len(data) < HOLD_LIMIT:
            data, head = head + data, b""
        held = self._held
        if held is not None:
            held += head
            # Held, unless the transport would then pass its high-water mark: written now,
            # the transport pauses the protocol as it would have for each write alone.
            if len(held) + len(data) + self.transport.get_write_buffer_size() < HOLD_LIMIT:
                self._held = held + data  # b"" + data is data itself: no copy
                return
            self._held = b""
            head = held
        # Counted first: the write may call pause_writing, which reads the count.
        if head:
            size = len(head) + len(data)
            self._written += size
            self.transport.writelines((head, data))
        elif data:
            size = len(data)
            self._written += size
            self.transport.write(data)
        else:
            return
        self.state.stats.bytes_out += size

    def _hold_writes(self) -> None:
        """Gather what is written from now on, until ``_send_held``: several responses made
        in one callback (pipelined requests) then cost one ``send`` instead of one each."""
        if self._held is None:
            self._held = b""

    def _send_held(self) -> None:
        """Write what was held, and write through again. Before anything that must follow
        the held bytes on the wire (a file sent by the kernel, end of stream, a close, a
        hand-over), and at the end of the callback that held them."""
        held = self._held
        if held is not None:
            self._held = None
            self._write(held)

    # -- the send deadline ---------------------------------------------------------------------
    #
    # A peer that takes nothing of what we send would hold its buffers, its app (waiting in
    # send()) and, once we close, the connection itself, forever: the transport finishes
    # sending before it closes. So while bytes wait for the peer (writing paused above the
    # high-water mark, or a close waiting for its buffer to drain) a send deadline runs,
    # restarted whenever the peer took something: it is an idle clock, as nginx's
    # send_timeout, not a limit on the whole transfer. What the peer took is what we wrote
    # less what the transport still holds; the kernel's own buffer is not counted.

    def _taken(self) -> int:
        return self._written - self.transport.get_write_buffer_size()

    def _arm_send_deadline(self) -> None:
        """Start the send deadline (with ``--timeout-send``), unless it is already running."""
        timeout = self.config.timeout_send
        if timeout and self._timer_kind != self.SEND_DEADLINE:
            self._taken_mark = self._taken()
            self._set_timer(self.SEND_DEADLINE, timeout)

    def _took_nothing(self) -> bool:
        """At the send deadline: True if the peer took nothing since it was armed; else restart it."""
        taken = self._taken()
        if taken == self._taken_mark:
            return True
        self._taken_mark = taken
        self._set_timer(self.SEND_DEADLINE, self.config.timeout_send)
        return False

    def _close_transport(self) -> None:
        """Close once what is buffered is sent: the send deadline bounds how long that takes."""
        self._send_held()
        transport = self.transport
        transport.close()
        if transport.get_write_buffer_size() and self.config.timeout_send:
            self._arm_send_deadline()
        else:
            self._drop_timer()

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
