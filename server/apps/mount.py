"""``Mounts``: several apps behind one server, chosen by path prefix (``--mount /api=pkg:app``).

The longest matching prefix wins; a prefix matches a whole path segment (``/api`` takes
``/api`` and ``/api/users``, never ``/apix``). The chosen app sees the full path, with
``root_path`` extended by the prefix — so an ASGI app routes on ``path`` minus ``root_path``
as the spec says, and a WSGI app gets ``SCRIPT_NAME=/api`` and ``PATH_INFO=/users``. Paths
no prefix matches go to the main app, or get a 404 when there is none.

Dispatch runs in the reactor for every request, so it is a short loop over a list sorted
once, not a router: mounts are few.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from treadle.server.exchange import Channel
from treadle.server.types import Receive, Scope, Send


class Runner(Protocol):
    """How a connection reaches an app: ``start`` for HTTP requests, and the runner is itself
    an ASGI app for other scopes (the WebSocket handler calls it)."""

    def start(self, scope: Scope, channel: Channel) -> Any:
        """The cycle for one request, not yet running: the connection feeds it what it has
        parsed, then calls its ``begin()`` (reactor thread)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class Mounts:
    __slots__ = ("routes", "default")

    def __init__(self, routes: Sequence[tuple[str, Runner]], default: Runner) -> None:
        self.routes = sorted(routes, key=lambda route: len(route[0]), reverse=True)
        self.default = default

    def start(self, scope: Scope, channel: Channel) -> Any:
        return self._route(scope).start(scope, channel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._route(scope)(scope, receive, send)

    def _route(self, scope: Scope) -> Runner:
        """The runner for this scope, with ``root_path`` extended by its prefix."""
        root_path = scope["root_path"]
        path = scope["path"][len(root_path) :]  # the path as the client sent it
        for prefix, runner in self.routes:
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                scope["root_path"] = root_path + prefix
                return runner
        return self.default


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The main app when only mounts were given."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})  # refused before accept: 403
        return
    body = b"404 Not Found\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
