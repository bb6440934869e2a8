"""WebSocket over HTTP/1.1 (RFC 6455): the handshake, on the connection an upgrade hands over.

An HTTP/1.1 connection whose request asked to upgrade calls ``upgrade()``: the session takes
the transport over (``transport.set_protocol``) with the parsed request and whatever bytes
followed it. Everything the peer sees of the handshake — the 101, a denial or error
response — is rendered by wsproto's ``WSConnection``, so the handshake rules are its, not
ours; after the 101 the session (server/ws_session.py) runs the frames, the same as over
HTTP/2.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterable

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    Event,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from treadle.server.asgi.scope import websocket_scope
from treadle.server.asgi.websocket import WebSocketCycle
from treadle.server.http1.fastparse import Request as HttpRequest
from treadle.server.http1.writer import error_body
from treadle.server.observe.logging import error_logger
from treadle.server.ws_session import CLOSE_ABNORMAL, WebSocketSession


def upgrade(http: Any, request: HttpRequest) -> bool:
    """Take an HTTP/1.1 connection (an ``Http1Connection``) over for the WebSocket it asked for."""
    http.hand_over()
    transport = http.transport
    conn = WSConnection(ConnectionType.SERVER)
    protocol = WSProtocol(http.config, http.state, http.app, http.loop, transport, http.client, http.server, conn)
    transport.set_protocol(protocol)
    protocol.start(request, http.parser.trailing_data[0], http.tls)
    return True


class WSProtocol(WebSocketSession, asyncio.Protocol):
    """A WebSocket that began as an HTTP/1.1 upgrade: it owns the TCP connection, and its
    ``conn`` is wsproto's ``WSConnection``, which also speaks the handshake."""

    # -- the hand-over -------------------------------------------------------------------------

    def start(self, request: HttpRequest, trailing: bytes, tls: dict[str, Any] | None) -> None:
        """Validate the handshake and start the app, or answer 400/426 and close."""
        state = self.state
        state.connections.add(self)
        self._target = request.target
        self.transport.resume_reading()
        try:
            # wsproto replays the request as a GET, so the method is checked here.
            self.conn.initiate_upgrade_connection(request.headers, request.target)
            if request.method != b"GET":
                raise RemoteProtocolError("WebSocket handshake must be GET", event_hint=RejectConnection())
            event = next(self.conn.events())
        except RemoteProtocolError as exc:
            error_logger.debug("Invalid WebSocket handshake from %s: %s", self.client, exc)
            hint = exc.event_hint
            if not isinstance(hint, RejectConnection):
                hint = RejectConnection()
            self._plain_response(hint.status_code, list(hint.headers))
            return
        except UnicodeError:  # wsproto decodes Host as IDNA
            self._plain_response(400)
            return
        assert isinstance(event, Request)
        scope = websocket_scope(
            request.target,
            "1.1",  # RFC 6455 4.1: the handshake is an HTTP/1.1 request
            request.headers,
            tls,
            self.client,
            self.server,
            list(event.subprotocols),
            self.config,
            state.lifespan_state,
        )
        if scope is None:
            self._plain_response(404)  # outside --root-path, which requests keep
            return
        self._run(scope, trailing)

    # -- the handshake's answers, called by WebSocketCycle (reactor thread) --------------------

    def _send_acceptance(self, subprotocol: str | None, headers: list[Any]) -> None:
        extensions = [PerMessageDeflate()] if self.config.ws_per_message_deflate else []
        event = AcceptConnection(subprotocol=subprotocol, extensions=extensions, extra_headers=headers)
        self._write(self._render(event))

    def deny(self, cycle: WebSocketCycle, status: int, headers: list[Any]) -> None:
        event = RejectConnection(status_code=status, headers=self._with_default_headers(headers), has_body=True)
        self._write(self._render(event))
        self._log_access(status)

    def send_denial_body(self, cycle: WebSocketCycle, body: bytes, more_body: bool) -> Awaitable[None] | None:
        if self._closed:
            cycle.disconnect(CLOSE_ABNORMAL)
            return None
        self._write(self._render(RejectData(data=body, body_finished=not more_body)))
        if not more_body:
            self._close()
            return None
        return self._drain()

    def refuse(self, cycle: WebSocketCycle, status: int) -> None:
        if self._closed:
            return
        try:
            self._plain_response(status)
        except h11.LocalProtocolError:
            self.force_close()  # a failed response left wsproto's HTTP state unusable

    def _plain_response(self, status: int, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """A short plain-text HTTP response (bad handshake, 403, 500), then close."""
        body = error_body(status)
        headers = [
            *extra,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
        ]
        event = RejectConnection(status_code=status, headers=self._with_default_headers(headers), has_body=True)
        self._write(self.conn.send(event) + self.conn.send(RejectData(data=body)))
        self._log_access(status)
        self._close()

    def _render(self, event: Event) -> bytes:
        """wsproto's bytes for a handshake event; an app's invalid values become its error."""
        try:
            return self.conn.send(event)
        except (LocalProtocolError, h11.LocalProtocolError, TypeError, ValueError) as exc:
            raise RuntimeError(f"Invalid WebSocket response from the app: {exc}")
