"""Treadle's HTTP server for ASGI apps.

    import server
    server.run("myproject.app:app", port=8000)      # blocks until SIGINT/SIGTERM

or, to embed (tests do this)::

    srv = server.Server(server.Config(app, port=0))
    srv.start()            # returns once listening; srv.port is the bound port
    ...
    srv.shutdown()         # graceful, then joins the reactor thread
"""

from __future__ import annotations

from typing import Any

from server.asgi_http import ClientDisconnected
from server.config import Config
from server.main import Server, StartupError
from server.supervisor import serve

__all__ = ["ClientDisconnected", "Config", "Server", "StartupError", "run"]


def run(app: Any, **options: Any) -> int:
    """Serve ``app`` (an ASGI callable or ``"module:attr"``) with ``Config`` options until a
    signal stops it; returns the exit code."""
    return serve(Config(app, **options))
