"""``Upgrade: h2c``: an HTTP/1.1 request that asks to continue the connection in HTTP/2
(RFC 7540 3.2; RFC 9113 3.1 deprecates it, but curl's ``--http2`` on http:// still uses it).

The server answers 101, the connection continues in HTTP/2 (our SETTINGS, then the client's
preface), and the request that asked is answered on stream 1. Only a request without a body
is upgraded: one with a body is answered over HTTP/1.1, as the RFC allows, since the body
would have to be read in HTTP/1.1 framing before the switch (docs/http2.md). A request
whose ``HTTP2-Settings`` is missing, repeated or not base64url, or whose ``Connection``
does not name the upgrade (RFC 9110 7.8), is served over HTTP/1.1 too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, NamedTuple

from treadle.server.http1.fastparse import Request
from treadle.server.http2.connection import Http2Connection

SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"

# Fields of the HTTP/1.1 request that have no place on an HTTP/2 stream (RFC 9113 8.2.2).
_HOP_BY_HOP = frozenset((b"connection", b"upgrade", b"http2-settings", b"keep-alive", b"proxy-connection", b"te"))


class UpgradeRequest(NamedTuple):
    """What stream 1 starts with: the client's ``HTTP2-Settings``, and the request as HTTP/2
    header fields."""

    settings: bytes
    headers: list[tuple[bytes, bytes]]


def upgrade(http: Any, request: Request) -> bool:
    """Continue ``http`` (an ``Http1Connection``) in HTTP/2 for ``request``; False to leave the
    request to HTTP/1.1."""
    settings = [value for name, value in request.headers if name == b"http2-settings"]
    tokens = {t.strip().lower() for name, value in request.headers if name == b"connection" for t in value.split(b",")}
    if len(settings) != 1 or b"upgrade" not in tokens or request.chunked or request.content_length:
        return False
    try:
        payload = base64.urlsafe_b64decode(settings[0] + b"=" * (-len(settings[0]) % 4))
    except (binascii.Error, ValueError):
        return False
    if len(payload) % 6:  # RFC 9113 6.5.1: a SETTINGS payload is 6-byte entries
        return False
    fields = [(b":method", request.method), (b":path", request.target), (b":scheme", b"http")]
    fields += [(name, value) for name, value in request.headers if name not in _HOP_BY_HOP]
    if any(name == b"te" and b"trailers" in value.lower() for name, value in request.headers):
        fields.append((b"te", b"trailers"))
    trailing = http.parser.trailing_data[0]
    http.hand_over()
    transport = http.transport
    transport.write(SWITCHING)
    http.state.stats.bytes_out += len(SWITCHING)
    connection = Http2Connection(http.config, http.state, http.app, http.loop)
    transport.set_protocol(connection)
    connection.connection_made(transport, UpgradeRequest(settings[0], fields))
    if trailing:
        connection.data_received(trailing)  # the client's preface, sent right after the request
    return True
