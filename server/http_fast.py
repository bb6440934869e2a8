"""The HTTP/1.1 connection on the fast engine (``--http fast``): ``H11Protocol`` with the
parser swapped for ``server.fastparse``.

Everything but parsing is shared with the h11 engine — timers, flow control, the
``Channel`` the request cycles talk to, response rendering, closing — so the two engines
cannot drift apart in behaviour; the test suite runs against both. What differs is the
parser's grammar, where fastparse is stricter than h11 in the ways its module documents
(obs-fold, CL with TE, TE in HTTP/1.0, request-target forms, chunk extensions).

Discussion: a fresh ``ServerConnection`` per request, as for h11, keeps the parser's state
machine out of the response path (the protocol renders responses itself); it costs one
small object per request, against h11's ~40 µs of parsing it replaces.
"""

from __future__ import annotations

import asyncio

from server.apps import Runner
from server.config import Config
from server.fastparse import NEED_DATA, Data, EndOfMessage, RemoteProtocolError, Request, ServerConnection
from server.http11 import _HEADER_TIMER, _KEEPALIVE_TIMER, _NO_TIMER, H11Protocol
from server.state import ServerState


class FastProtocol(H11Protocol):
    def __init__(self, config: Config, state: ServerState, app: Runner, loop: asyncio.AbstractEventLoop):
        super().__init__(config, state, app, loop)
        self.conn = ServerConnection(config.limit_request_head_size)  # type: ignore[assignment]

    def _handle_events(self) -> None:
        conn = self.conn
        while not self._closed:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                self._protocol_error(exc)  # type: ignore[arg-type]
                return
            etype = type(event)
            if etype is Data:
                self._on_data(event.data)
            elif etype is Request:
                self._on_request(event)  # type: ignore[arg-type]
            elif etype is EndOfMessage:
                self._on_end_of_message()
                return
            elif event is NEED_DATA:
                if self.cycle is None and self._timer_kind == _NO_TIMER:
                    self._set_timer(_HEADER_TIMER, self.config.timeout_request_header)
                return
            else:  # PAUSED cannot happen (we stop at EndOfMessage); ConnectionClosed is not fed
                return

    def _next_cycle(self) -> None:
        """The exchange is over on both sides: start parsing the next request."""
        self.cycle = None
        self._request_line = None
        self._head_request = False
        data = self.conn.trailing_data[0]
        self.conn = ServerConnection(self.config.limit_request_head_size)  # type: ignore[assignment]
        self._request_done = False
        self._pipelined = 0
        self._resume_reading()
        if data:
            self.conn.receive_data(data)
            self._handle_events()
        else:
            self._set_timer(_KEEPALIVE_TIMER, self.config.timeout_keep_alive)
