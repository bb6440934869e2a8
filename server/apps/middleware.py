"""The built-in middleware, and where each is applied.

Proxy headers wrap the server's *runner* — the object every request reaches first, before
mounts, WSGI or ASGI — so every app (WSGI ones, mounted ones, WebSocket handlers) sees the
client and scheme the trusted proxy reported. CORS wraps each app, main or mounted, in the
middleware of its kind (``server/apps/cors.py`` for ASGI, ``server/apps/cors_wsgi.py`` for WSGI), both
deciding through one ``CORSPolicy``; WebSocket scopes pass through it.
"""

from __future__ import annotations

from typing import Any

from treadle.server.apps.cors import CORSMiddleware
from treadle.server.apps.cors_policy import CORSPolicy
from treadle.server.apps.cors_wsgi import WSGICORSMiddleware
from treadle.server.apps.proxy_headers import TrustedHosts, rewrite_scope
from treadle.server.exchange import Channel
from treadle.server.types import ASGIApp, Receive, Scope, Send


class ProxyHeadersRunner:
    """``--proxy-headers`` for a runner (``server/apps/mount.py``): rewrites each scope before it."""

    __slots__ = ("runner", "trusted")

    def __init__(self, runner: Any, trusted: TrustedHosts) -> None:
        self.runner = runner
        self.trusted = trusted

    def start(self, scope: Scope, channel: Channel) -> Any:
        rewrite_scope(scope, self.trusted)
        return self.runner.start(scope, channel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            rewrite_scope(scope, self.trusted)
        await self.runner(scope, receive, send)


def wrap_runner(runner: Any, config: Any) -> Any:
    """The server's runner, behind ``--proxy-headers`` if it is on."""
    if config.proxy_headers:
        return ProxyHeadersRunner(runner, TrustedHosts(config.forwarded_allow_ips))
    return runner


def wrap_asgi_app(app: ASGIApp, config: Any) -> ASGIApp:
    """An ASGI app, behind CORS if ``--cors-allow-origin`` is given."""
    policy = CORSPolicy.from_config(config)
    return app if policy is None else CORSMiddleware(app, policy)


def wrap_wsgi_app(app: Any, config: Any) -> Any:
    """A WSGI app, behind CORS if ``--cors-allow-origin`` is given."""
    policy = CORSPolicy.from_config(config)
    return app if policy is None else WSGICORSMiddleware(app, policy)
