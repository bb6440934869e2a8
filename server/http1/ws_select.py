"""Choosing the WebSocket implementation (``--ws``) without importing it unless asked.

``auto`` uses wsproto when it is installed, ``wsproto`` requires it, ``none`` turns
WebSockets off. Without an implementation, upgrade requests are served as plain HTTP
requests (RFC 9110 7.8 lets a server ignore ``Upgrade``), as uvicorn does.
"""

from __future__ import annotations

from typing import Any, Callable

from treadle.server.observe.logging import error_logger

Upgrader = Callable[[Any, Any], bool]  # (the HTTP/1.1 connection, its request head): taken over?


def websocket_upgrader(mode: str) -> Upgrader | None:
    """The function that takes an upgrade request over, or None when WebSockets are off."""
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

    return upgrade
