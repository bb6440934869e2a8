"""The ASGI scope of a request or a WebSocket handshake, whatever wire protocol carried it.

A connection parses the request (HTTP/1.1 today; an HTTP/2 stream would too) and hands the
parts here, so every protocol makes the same scope: the same path decoding, ``root_path``
rule and ``--path-policy`` (server/target.py), the same keys, the same extensions. A path
the policy refuses raises ``InvalidPath``, which the connection answers with 400.
"""

from __future__ import annotations

from typing import Any

from treadle.server.target import split_target
from treadle.server.types import Scope

# 2.4: the spec revision in which send() on a closed connection raises an OSError subclass
# (ClientDisconnected, server/exchange.py), and websocket.disconnect carries a reason.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


def http_scope(
    method: bytes,
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    tls: bool,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    config: Any,
    lifespan_state: dict[str, Any],
) -> Scope | None:
    """An ``http`` scope; None if the target lies outside ``--root-path`` (which the request
    was to keep: a 404). Raises ``InvalidPath`` for a path ``--path-policy`` refuses (400)."""
    scope = _scope("http", target, http_version, headers, "https" if tls else "http", client, server, config)
    if scope is not None:
        scope["method"] = method.decode("ascii")
        scope["state"] = lifespan_state.copy()
        scope["extensions"] = {"http.response.trailers": {}, "http.response.zerocopysend": {}}
    return scope


def websocket_scope(
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    tls: bool,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    subprotocols: list[str],
    config: Any,
    lifespan_state: dict[str, Any],
) -> Scope | None:
    """A ``websocket`` scope; None if the target lies outside a kept ``--root-path``. Raises
    ``InvalidPath`` as ``http_scope`` does."""
    scope = _scope("websocket", target, http_version, headers, "wss" if tls else "ws", client, server, config)
    if scope is not None:
        scope["subprotocols"] = subprotocols
        scope["state"] = lifespan_state.copy()
        scope["extensions"] = {"websocket.http.response": {}}
    return scope


def _scope(
    kind: str,
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    config: Any,
) -> Scope | None:
    """The keys every scope of a request has."""
    root_path = config.root_path
    split = split_target(target, root_path, config.root_path_kept, config.path_policy != "lenient")
    if split is None:
        return None
    path, raw_path, query = split
    return {
        "type": kind,
        "asgi": ASGI_VERSION.copy(),
        "http_version": http_version,
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
    }
