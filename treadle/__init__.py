"""Treadle: a pure-Python HTTP server for ASGI and WSGI apps, on its own event loop.

    import treadle
    treadle.run("myproject.app:app", port=8000)      # blocks until SIGINT/SIGTERM

or, to embed (tests do this)::

    srv = treadle.Server(treadle.Config(app, port=0))
    srv.start()            # returns once listening; srv.port is the bound port
    ...
    srv.shutdown()         # graceful, then joins the reactor thread

Two packages live under this name: ``treadle.reactor``, the event loop, which knows nothing
of HTTP, and ``treadle.server``, the HTTP server built on it. One name of ours on
``sys.path``, so an app of its own called ``server``, ``reactor`` or ``app`` still loads.

Discussion: in the repository the two packages are the top-level folders ``reactor/`` and
``server/``, which pyproject.toml maps under ``treadle`` when it builds the wheel. Run from
a checkout (the tests, ``PYTHONPATH=.``), this package finds them beside its own folder.
"""

from __future__ import annotations

import os
from typing import Any

_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "server")) and os.path.isfile(
    os.path.join(_checkout, "server", "__init__.py")
):
    __path__.append(_checkout)  # noqa: F821 (a package's own __path__)

__all__ = ["ClientDisconnected", "Config", "Server", "StartupError", "run"]


def __getattr__(name: str) -> Any:
    # Lazily, so that ``import treadle.reactor`` does not load the HTTP server too.
    if name in __all__:
        from treadle import server

        return getattr(server, name)
    raise AttributeError(f"module 'treadle' has no attribute {name!r}")
