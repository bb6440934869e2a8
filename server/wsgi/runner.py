"""``WsgiRunner``: starts a WSGI app's ``WsgiCycle`` on the worker pool for each request a
connection parses (server/apps/appset.py builds one per WSGI app)."""

from __future__ import annotations

from typing import Any

from treadle.server.exchange import Channel
from treadle.server.types import Receive, Scope, Send
from treadle.server.wsgi.cycle import WsgiCycle
from treadle.server.wsgi.handoff import Inbox
from treadle.server.wsgi.pool import WorkerPool


class WsgiRunner:
    """Starts WSGI requests on the pool; answers 503 when its queue is full (reactor thread).

    Discussion: requests are submitted once per loop pass, after the pass's I/O callbacks,
    not as each is parsed. A worker woken mid-pass wants the GIL at once, and takes it at
    the reactor's next syscall (every send and recv releases it), so the reactor then waits
    for the GIL at each of them; woken together at the end of the pass, the workers run while
    the reactor polls. This cut the CPU time of a plaintext request by about a third.
    """

    __slots__ = ("app", "inbox", "pool", "_pending")

    def __init__(self, app: Any, inbox: Inbox, pool: WorkerPool) -> None:
        self.app = app
        self.inbox = inbox
        self.pool = pool
        self._pending: list[WsgiCycle] = []

    def start(self, scope: Scope, channel: Channel) -> WsgiCycle:
        return WsgiCycle(self, scope, channel)

    def enqueue(self, cycle: WsgiCycle) -> None:
        """Hand a cycle to the pool at the end of this loop pass (see the class docstring)."""
        self._pending.append(cycle)
        if len(self._pending) == 1:
            self.inbox.loop.call_soon(self._submit)

    def _submit(self) -> None:
        pending, self._pending = self._pending, []
        for cycle in pending:
            if not self.pool.submit(cycle):
                cycle.reject_busy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Scopes other than HTTP (a WebSocket): WSGI cannot serve them, so refuse (403)."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
