"""Which built-in ASGI middleware wraps the app, and in what order.

Proxy headers go outermost, so everything inside (CORS, the app) sees the client and
scheme the trusted proxy reported.
"""

from __future__ import annotations

from typing import Any

from server.cors import CORSMiddleware
from server.proxy_headers import ProxyHeadersMiddleware


def wrap_app(app: Any, config: Any) -> Any:
    """``app`` wrapped in the middleware ``config`` switches on (``--cors-*``, ``--proxy-headers``)."""
    if config.cors_allow_origins:
        app = CORSMiddleware(
            app,
            allow_origins=config.cors_allow_origins,
            allow_methods=config.cors_allow_methods,
            allow_headers=config.cors_allow_headers,
            allow_credentials=config.cors_allow_credentials,
            max_age=config.cors_max_age,
        )
    if config.proxy_headers:
        app = ProxyHeadersMiddleware(app, config.forwarded_allow_ips)
    return app
