"""The one narrow interface between a connection and the requests it carries.

A connection moves bytes, keeps deadlines and frames messages; an *exchange* is one request
and its response as an app sees it: the ASGI HTTP cycle (server/asgi/http.py) or the WSGI
call on the pool (server/wsgi/cycle.py). Neither side knows the other's kind. An HTTP/1.1
connection carries one exchange at a time; an HTTP/2 connection would carry one per
stream, each stream implementing ``Channel``. (WebSocket sessions have the same shape
with their own messages: server/asgi/websocket.py's ``WebSocketChannel``.)

::

    connection ──feed_body / end_body / disconnect / end_stream──►  exchange ──► app
               ◄──start_response / send_body / send_trailers /
                  want_body / abort / cycle_done (Channel)──────────

Everything here runs in the reactor thread (a WSGI exchange crosses to its worker thread
and back on its own side of the line).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Awaitable, Iterable, Protocol


class ResponseState(IntEnum):
    """How far a response has got, in the only order ASGI and WSGI allow::

        START --start--> BODY --last body--> DONE
                           \\--(announced trailers)--> TRAILERS --last trailers--> DONE
    """

    START = 0
    BODY = 1
    TRAILERS = 2
    DONE = 3


class ClientDisconnected(OSError):
    """Raised to an app that sends once the client has gone (ASGI HTTP spec 2.4; WSGI too)."""


class Channel(Protocol):
    """What an exchange needs from the connection (or stream) carrying it."""

    def start_response(self, cycle: Any, status: int, headers: Iterable[Any], trailers: bool) -> None:
        """Validate and queue the response head; raise RuntimeError if the app got it wrong."""

    def send_body(self, cycle: Any, data: bytes, more_body: bool) -> Awaitable[None] | None:
        """Write a body chunk; return an awaitable while the peer is not keeping up."""

    def send_trailers(self, cycle: Any, headers: Iterable[Any], more_trailers: bool) -> None:
        """Write (or drop, if the client cannot take them) trailer fields."""

    def want_body(self, cycle: Any) -> None:
        """The app is waiting for body: send 100 Continue if owed, resume reading."""

    def send_early_hint(self, cycle: Any, headers: list[tuple[bytes, bytes]]) -> None:
        """A 103 Early Hints response with these fields, before the response (if the client can
        take one: not an HTTP/1.0 client); RuntimeError for an invalid field."""

    def send_file(self, cycle: Any, file: Any, offset: int, count: int) -> Awaitable[None]:
        """Send ``count`` bytes of ``file`` from ``offset`` as more body (zerocopysend)."""

    def send_error_response(self, cycle: Any, status: int) -> None:
        """Answer on the app's behalf (it failed before starting a response)."""

    def abort(self, cycle: Any) -> None:
        """The response cannot be completed correctly: close without finishing it."""

    def cycle_done(self, cycle: Any) -> None:
        """The app has returned (possibly long after the response completed)."""


class Exchange(Protocol):
    """What a connection needs from the exchange it started (``runner.start(scope, channel)``)."""

    response_state: ResponseState
    disconnected: bool

    @property
    def body_size(self) -> int:
        """Request body bytes received and not yet taken by the app (for flow control)."""

    def begin(self) -> None:
        """Run the app (once the body already parsed has been fed)."""

    def feed_body(self, data: bytes) -> int:
        """More request body; returns ``body_size``."""

    def end_body(self) -> None:
        """The request body is complete."""

    def disconnect(self) -> None:
        """The client has gone (or its request failed): the app must learn of it."""

    def end_stream(self) -> None:
        """The server ends this response early (an event stream at shutdown)."""
