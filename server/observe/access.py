"""The access log: one line per request on the ``treadle.access`` logger, whatever carried it.

Every connection kind calls these (HTTP/1.1 requests and WebSocket handshakes today), so
the lines look alike and a change of format is made in one place.
"""

from __future__ import annotations

import logging

from treadle.server.observe.logging import access_logger

_INFO = logging.INFO


def format_client(client: tuple[str, int] | None) -> str:
    """``host:port`` as log lines show a client; an IPv6 host in brackets (RFC 3986 3.2.2),
    so that its last group is not read as the port ("[2001:db8::1]:0", not "2001:db8::1:0")."""
    if not client:
        return "-"
    host = client[0]
    return f"[{host}]:{client[1]}" if ":" in host else f"{host}:{client[1]}"


def log_request(
    config: object,
    client: tuple[str, int] | None,
    method: bytes,
    target: bytes,
    http_version: str,
    status: int,
    body_bytes: int,
    seconds: float,
) -> None:
    """``127.0.0.1:50000 - "GET /path?q HTTP/1.1" 200 5 0.3ms``: the client (as a trusted
    proxy reported it), the request line, the status, the body bytes written, the duration."""
    if not config.access_log or not access_logger.isEnabledFor(_INFO):  # type: ignore[attr-defined]
        return
    access_logger.info(
        '%s - "%s %s HTTP/%s" %d %d %.1fms',
        format_client(client),
        method.decode("ascii"),
        target.decode("latin-1"),
        http_version,
        status,
        body_bytes,
        seconds * 1000.0,
    )


def log_websocket(config: object, client: tuple[str, int] | None, target: bytes, status: int) -> None:
    """``127.0.0.1:50000 - "WebSocket /chat" 101``: a handshake's outcome (101, or the HTTP
    status it was answered with)."""
    if not config.access_log or not access_logger.isEnabledFor(_INFO):  # type: ignore[attr-defined]
        return
    access_logger.info('%s - "WebSocket %s" %d', format_client(client), target.decode("latin-1"), status)
