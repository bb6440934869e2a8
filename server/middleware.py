"""The built-in middleware, and where each is applied.

Proxy headers wrap the server's *runner* — the object every request reaches first, before
mounts, WSGI or ASGI — so every app (WSGI ones, mounted ones, WebSocket handlers) sees the
client and scheme the trusted proxy reported. CORS is ASGI middleware around each ASGI app
(WSGI apps keep their own CORS handling; the server cannot add headers to a WSGI response
without buffering it).
"""

from __future__ import annotations

from typing import Any

from server.asgi_http import Channel
from server.cors import CORSMiddleware
from server.cors_policy import CORSPolicy
from server.logging import error_logger
from server.proxy_headers import TrustedHosts, rewrite_scope
from server.types import ASGIApp, Receive, Scope, Send


class ProxyHeadersRunner:
    """``--proxy-headers`` for a runner (``server/mount.py``): rewrites each scope before it."""

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


def warn_cors_for_wsgi(config: Any) -> None:
    if config.cors_allow_origins:
        error_logger.warning("--cors-allow-origin applies to ASGI apps only; a WSGI app must add CORS itself.")
