"""Treadle's HTTP server for ASGI and WSGI apps (``treadle.server``).

Its public API is re-exported by ``treadle`` itself: ``treadle.run``, ``treadle.Server``,
``treadle.Config`` (see treadle/__init__.py for an example).
"""

from __future__ import annotations

from typing import Any

from treadle.server.config import Config
from treadle.server.exchange import ClientDisconnected
from treadle.server.main import Server, StartupError
from treadle.server.process.supervisor import serve

__all__ = ["ClientDisconnected", "Config", "Server", "StartupError", "run"]


def run(app: Any, **options: Any) -> int:
    """Serve ``app`` (an ASGI callable or ``"module:attr"``) with ``Config`` options until a
    signal stops it; returns the exit code."""
    return serve(Config(app, **options))
