"""How an HTTP/1.1 connection ends: closing after a response, lingering after an error,
graceful shutdown, and what each of its deadlines does when it expires.

``Closing`` is a mixin of ``Http1Connection`` (server/http1/connection.py), as ``Responder``
(server/http1/responding.py) is: that module reads and decides, this one ends. It uses the
connection's attributes (``transport``, ``parser``, ``writer``, ``cycle``, ``_state``, the
per-request flags) and the deadline machinery of ``ConnectionControl`` (server/http1/timers.py).
"""

from __future__ import annotations

from typing import Any

from treadle.server.http1.states import Deadline, State
from treadle.server.http1.writer import is_event_stream
from treadle.server.observe.logging import error_logger

REQUEST_GRACE = 1.0  # on shutdown, for the request an idle connection's client may be sending
LINGER_TIME = 2.0  # after an error response, drain the client's input this long (gunicorn)

_RECEIVING, _RESPONDING, _CLOSED = State.RECEIVING, State.RESPONDING, State.CLOSED
_HEAD_DEADLINE, _KEEP_ALIVE, _LINGER = Deadline.REQUEST_HEAD, Deadline.KEEP_ALIVE, Deadline.LINGER
_BODY_DEADLINE, _SEND_DEADLINE = Deadline.REQUEST_BODY, Deadline.SEND


class Closing:
    """The ending half of ``Http1Connection`` (reactor thread)."""

    transport: Any
    parser: Any
    writer: Any
    config: Any
    cycle: Any
    client: Any
    _state: State
    _keep_alive: bool
    _ending_stream: bool

    def _close(self) -> None:
        if self._state is not _CLOSED:
            self._state = _CLOSED
            self._close_transport()

    def _close_after_response(self) -> None:
        """The response is complete and the connection must not carry another: close, at once
        if the request was read to its end, else lingering (unread input would reset it)."""
        if self._state is _RESPONDING:
            self._close()
        else:
            self._close_lingering()

    def _close_lingering(self) -> None:
        """Close after an early response without making the kernel send RST over it.

        Closing with unread input makes the kernel reset the connection, which can destroy
        the response before the client reads it. So: send FIN, keep reading (and dropping)
        for a short while, then close.
        """
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        transport = self.transport
        try:
            can_half_close = transport.can_write_eof()
        except Exception:
            can_half_close = False
        if not can_half_close:
            self._close_transport()
            return
        self._send_held()
        transport.write_eof()
        self._resume_reading()
        self._set_timer(_LINGER, LINGER_TIME)

    def shutdown(self) -> None:
        """Graceful shutdown: a request being answered, or being received, is served first,
        and the connection closed after it (``Connection: close``).

        An idle connection — accepted with no request yet, or between two requests — is
        closed if no request comes within ``REQUEST_GRACE``, not at once: its client may
        have one on the way (a busy keep-alive client sends the next as soon as it has read
        a response), which closing now would lose. A reload under wrk's load loses dozens
        of requests that way. One that arrives is answered, with ``Connection: close``.
        """
        state = self._state
        if state is _CLOSED:
            return
        if state is _RECEIVING or state is _RESPONDING:
            self._keep_alive = False
            if self.writer.status and is_event_stream(self.writer.headers):
                self._end_event_stream()
        elif self._timer_kind == _HEAD_DEADLINE:
            if not self.parser.trailing_data[0]:  # else a head is arriving: its own deadline holds
                self._set_timer(_HEAD_DEADLINE, min(self.config.timeout_request_header, REQUEST_GRACE))
        elif self._timer_kind == _KEEP_ALIVE:
            self._set_timer(_KEEP_ALIVE, min(self.config.timeout_keep_alive, REQUEST_GRACE))
        else:
            self._close()

    def _end_event_stream(self) -> None:
        """Shutdown ends an event stream at once rather than after the graceful timeout.

        An event stream (``text/event-stream``, WHATWG HTML 9.2) has no end of its own: its
        app would run until the graceful timeout and then be cut off mid-stream. Any other
        response may be finishing real work, so it gets the whole graceful timeout; only
        event streams are ended early. The exchange tells its app the client is gone (or
        cancels it, or stops the WSGI worker's next write); when the app is done,
        ``cycle_done`` ends the body properly (the last chunk) and closes. Browsers then
        reconnect, to a server that is up.
        """
        cycle = self.cycle
        if cycle is None or self._state is _CLOSED or self._ending_stream:
            return
        self._ending_stream = True
        cycle.end_stream()

    def force_close(self) -> None:
        if self._held:
            self._held = b""  # dropped, as what the transport buffers is
        self._state = _CLOSED
        self._drop_timer()
        self.transport.abort()

    def _timer_fired(self, kind: int) -> None:
        if kind == _LINGER:
            self._close_transport()
        elif kind == _SEND_DEADLINE:
            if self._took_nothing():
                timeout = self.config.timeout_send
                error_logger.debug("%s took nothing sent to it for %s s: dropping it.", self.client, timeout)
                if self.cycle is not None:
                    # Before the abort fails what the app awaits (a sendfile): it must see why.
                    self.cycle.disconnect()
                self.force_close()
        elif self._state is _CLOSED:
            return
        elif kind == _KEEP_ALIVE:
            self._close()
        elif kind == _BODY_DEADLINE and self.cycle is not None:
            # The client stopped sending a body it owes (RFC 9110 15.5.9: 408).
            timeout = self.config.timeout_request_body
            error_logger.debug("No body bytes from %s for %s s: closing.", self.client, timeout)
            self._fail_request(408)
        elif kind == _HEAD_DEADLINE and self.cycle is None:
            if self.parser.trailing_data[0]:
                self._reject(408)  # part of a head arrived, too slowly
            else:
                self._close()  # an idle connection that never sent anything
