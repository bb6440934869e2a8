"""Choosing the WebSocket implementation (``--ws``) without importing it unless asked.

``auto`` uses wsproto when it is installed, ``wsproto`` requires it, ``none`` turns
WebSockets off. Without an implementation, upgrade requests are served as plain HTTP
requests (RFC 9110 7.8 lets a server ignore ``Upgrade``), as uvicorn does, and HTTP/2 does
not announce extended CONNECT (RFC 8441), so clients do not try it.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from treadle.server.observe.logging import error_logger


class WebSocketEntries(NamedTuple):
    """Where a WebSocket handshake is taken over, by protocol."""

    upgrade: Callable[[Any, Any], bool]  # HTTP/1.1: (the connection, its request head) -> taken over?
    connect: Callable[[Any, Any, Any], None]  # HTTP/2: (the connection, the stream, its fields)


def websocket_entries(mode: str) -> WebSocketEntries | None:
    """The functions that take a WebSocket handshake over, or None when WebSockets are off."""
    if mode == "none":
        return None
    try:
        import wsproto  # noqa: F401
    except ImportError:
        if mode == "wsproto":
            raise ImportError("--ws wsproto needs the wsproto package: pip install 'treadle[websockets]'")
        # Not a warning: most apps never use WebSockets, and auto means "only if available".
        error_logger.info("WebSockets off (pip install 'treadle[websockets]' to enable): "
                          "upgrade requests are served as plain HTTP.")
        return None
    from treadle.server.http1.websocket import upgrade
    from treadle.server.http2.websocket import connect

    return WebSocketEntries(upgrade, connect)
