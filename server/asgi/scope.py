"""The ASGI scope of a request or a WebSocket handshake, whatever wire protocol carried it.

A connection parses the request (HTTP/1.1 today; an HTTP/2 stream would too) and hands the
parts here, so every protocol makes the same scope: the same path decoding, ``root_path``
rule and ``--path-policy`` (server/target.py), the same keys, the same extensions. A path
the policy refuses raises ``InvalidPath``, which the connection answers with 400.
"""

from __future__ import annotations

from typing import Any

from treadle.server.observe import request_id
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
    tls: dict[str, Any] | None,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    config: Any,
    lifespan_state: dict[str, Any],
) -> Scope | None:
    """An ``http`` scope; None if the target lies outside ``--root-path`` (which the request
    was to keep: a 404). ``tls``: the connection's TLS extension (server/tls.py), None in the clear.
    Raises ``InvalidPath`` for a path ``--path-policy`` refuses (400)."""
    scheme = "https" if tls else "http"
    scope = _scope("http", target, http_version, headers, scheme, client, server, config, lifespan_state)
    if scope is not None:
        scope["method"] = method.decode("ascii")
        extensions = {
            "http.response.trailers": {},
            "http.response.zerocopysend": {},
            "http.response.pathsend": {},
            "http.response.early_hint": {},
        }
        if tls is not None:
            extensions["tls"] = tls.copy()
        scope["extensions"] = extensions
    return scope


def websocket_scope(
    target: bytes,
    http_version: str,
    headers: list[tuple[bytes, bytes]],
    tls: dict[str, Any] | None,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    subprotocols: list[str],
    config: Any,
    lifespan_state: dict[str, Any],
) -> Scope | None:
    """A ``websocket`` scope; None if the target lies outside a kept ``--root-path``. Raises
    ``InvalidPath`` as ``http_scope`` does."""
    scheme = "wss" if tls else "ws"
    scope = _scope("websocket", target, http_version, headers, scheme, client, server, config, lifespan_state)
    if scope is not None:
        scope["subprotocols"] = subprotocols
        scope["extensions"] = {"websocket.http.response": {}}
        if tls is not None:
            scope["extensions"]["tls"] = tls.copy()
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
    lifespan_state: dict[str, Any],
) -> Scope | None:
    """The keys every scope of a request has; with ``--request-id-header``, its id in
    ``state`` and in the headers (server/observe/request_id.py)."""
    root_path = config.root_path
    split = split_target(target, root_path, config.root_path_kept, config.path_policy != "lenient")
    if split is None:
        return None
    path, raw_path, query = split
    state = lifespan_state.copy()
    if config.request_id_header:
        state["request_id"], headers = request_id.assign(headers, config)
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
        "state": state,
    }
