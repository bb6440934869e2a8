"""``AsgiRunner``: starts an ASGI app's ``RequestCycle`` for each request a connection parses.

A runner is what a connection hands each request to (``runner.start(scope, channel)``,
server/apps/appset.py builds them); for websocket scopes it is itself the ASGI app the
WebSocket session calls.
"""

from __future__ import annotations

from typing import Any

from treadle.reactor import Reactor
from treadle.server.asgi.http import RequestCycle
from treadle.server.exchange import Channel
from treadle.server.state import ServerState
from treadle.server.types import Receive, Scope, Send


class AsgiRunner:
    """Runs an ASGI 3 app for each request as an eager task on the loop (reactor thread).

    The loop is a ``Reactor``: the cycle uses its ``create_eager_task``, which asyncio's own
    loops lack before 3.12 (docs/reactor.md).
    """

    __slots__ = ("app", "loop", "tasks")

    def __init__(self, app: Any, loop: Reactor, state: ServerState) -> None:
        self.app = app
        self.loop = loop
        self.tasks = state.tasks

    def start(self, scope: Scope, channel: Channel) -> RequestCycle:
        return RequestCycle(scope, channel, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
