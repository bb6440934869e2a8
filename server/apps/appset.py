"""``AppSet``: every app one server serves, and how a parsed request reaches the right one.

Loading happens in ``Server.start()`` (so a bad import string or an app of unknown kind
fails startup with a clear message); the runner tree is built once the loop exists:

    Mounts (only with --mount)  ──prefix──►  AsgiRunner: a task per request on the loop
                                             WsgiRunner: a job per request on the WorkerPool

A connection calls ``runner.start(scope, channel)`` and gets back the cycle to feed body and
disconnects to; ``cycle.begin()`` then runs the app. One ``WorkerPool`` serves every WSGI
app of the server, and is only made when there is one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from treadle.reactor import Reactor
from treadle.server.apps.importer import load_app
from treadle.server.apps.interface import ASGI2Middleware, InterfaceError, detect_interface
from treadle.server.apps.middleware import wrap_asgi_app, wrap_wsgi_app
from treadle.server.apps.mount import Mounts, Runner, not_found
from treadle.server.asgi.lifespan_group import LifespanGroup
from treadle.server.asgi.runner import AsgiRunner
from treadle.server.config import Config
from treadle.server.config.envfile import load_env_file
from treadle.server.state import ServerState
from treadle.server.wsgi.handoff import Inbox
from treadle.server.wsgi.pool import WorkerPool
from treadle.server.wsgi.runner import WsgiRunner

_INTERFACE_NAMES = {"asgi3": "ASGI 3", "asgi2": "ASGI 2", "wsgi": "WSGI"}


class AppSet:
    def __init__(self, config: Config) -> None:
        """Apply ``--env-file``, then load and classify the main app and every mount
        (``EnvFileError``; ``ImportFromStringError`` or ``InterfaceError`` if one cannot be)."""
        self.config = config
        if config.env_file is not None:
            load_env_file(config.env_file)  # first, so the apps' modules see its variables
        self.main: tuple[str, Any] | None = None
        if config.app is not None:
            self.main = _classify(load_app(config.app, config.app_dir, config.factory), config.interface)
        self.mounts = [_load_mount(config, *mount) for mount in config.mounts]
        self.pool: WorkerPool | None = None
        self.inbox: Inbox | None = None  # the workers' way back to the loop, shared by every WSGI app

    @property
    def lifespan_app(self) -> Any:
        """What the lifespan protocol runs for: every ASGI app, the main one first (or None)."""
        classified = ([self.main] if self.main is not None else []) + [app for _, app in self.mounts]
        apps = [app for interface, app in classified if interface != "wsgi"]
        if len(apps) <= 1:
            return apps[0] if apps else None
        return LifespanGroup(apps)

    def describe(self) -> str:
        """What is served, for the start-up log: each app, the interface it is served as and,
        for WSGI, the worker threads: "myapp:app (WSGI, 8 threads, queue 1024)"."""
        served = [] if self.main is None else [("", self.config.app, self.main[0])]
        for (prefix, target, *_), (_, (interface, _)) in zip(self.config.mounts, self.mounts):
            served.append((prefix + " → ", target, interface))
        parts = []
        for where, target, interface in served:
            name = target if isinstance(target, str) else getattr(target, "__qualname__", repr(target))
            kind = _INTERFACE_NAMES[interface]
            if interface == "wsgi":
                kind += f", {self.config.threads} threads, queue {self.config.wsgi_queue_size}"
            parts.append(f"{where}{name} ({kind})")
        return "; ".join(parts)

    def runner(self, loop: Reactor, state: ServerState) -> Runner:
        """The object connections hand each request to (call in the reactor thread)."""
        main = self.main or ("asgi3", not_found)
        default = self._runner(main, loop, state)
        if not self.mounts:
            return default
        return Mounts([(prefix, self._runner(app, loop, state)) for prefix, app in self.mounts], default)

    def _runner(self, classified: tuple[str, Any], loop: Reactor, state: ServerState) -> Runner:
        interface, app = classified
        if interface != "wsgi":
            return AsgiRunner(wrap_asgi_app(app, self.config), loop, state)
        if self.pool is None:
            self.pool = WorkerPool(self.config.threads, self.config.wsgi_queue_size)
            self.pool.start(loop)
            self.inbox = Inbox(loop)
        return WsgiRunner(wrap_wsgi_app(app, self.config), self.inbox, self.pool)

    def idle(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """Settles once no WSGI request is queued or running (graceful shutdown waits on it)."""
        if self.pool is None:
            done = loop.create_future()
            done.set_result(None)
            return done
        return self.pool.idle(loop)

    def close(self) -> None:
        """Stop the worker threads (after the graceful wait; stuck ones are left as daemons)."""
        if self.pool is not None:
            self.pool.shutdown()


def _load_mount(config: Config, prefix: str, app: Any, interface: str = "auto") -> tuple[str, tuple[str, Any]]:
    try:
        return prefix, _classify(load_app(app, config.app_dir), interface)
    except InterfaceError as exc:
        raise InterfaceError(f"{exc} For the app mounted at {prefix}: --mount {prefix}=MODULE:APP:INTERFACE.")


def _classify(app: Any, interface: str) -> tuple[str, Any]:
    """(interface, callable to serve): ASGI 2 apps come back wrapped as ASGI 3."""
    if interface == "auto":
        interface = detect_interface(app)
    elif interface == "asgi":
        interface = "asgi3"
    if interface == "asgi2":
        return "asgi2", ASGI2Middleware(app)
    return interface, app
