"""``LifespanGroup``: one lifespan protocol run for several ASGI apps (the main app and the
mounted ones), so a FastAPI app mounted under a WSGI site still gets its startup and
shutdown.

To the server the group is one app (``server/asgi/lifespan.py`` drives it as usual). Inside,
each member app runs its own lifespan in turn: startup in mount order, shutdown in
reverse. A member that raises or returns before completing startup does not use lifespan
and is left out, as ``--lifespan auto`` treats a single app; only if every member does so
does the group raise too, so ``auto`` and ``on`` then behave exactly as for one app. A
member's ``startup.failed`` fails the group (members already started are shut down first);
a ``shutdown.failed`` is reported once every member has shut down.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from treadle.server.types import Message, Receive, Scope, Send


class LifespanGroup:
    __slots__ = ("apps",)

    def __init__(self, apps: Sequence[Any]) -> None:
        self.apps = list(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started: list[_Member] = []
        errors: list[BaseException] = []
        for app in self.apps:
            member = _Member(app, dict(scope))  # each its own scope; "state" is the shared dict
            reply = await member.step({"type": "lifespan.startup"})
            if reply is None:
                errors.append(await member.outcome())
            elif reply["type"] == "lifespan.startup.failed":
                await _shut_down(reversed(started))
                await send(reply)
                return
            else:
                started.append(member)
        if not started and errors:
            raise errors[0]
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        failed = await _shut_down(reversed(started))
        await send(failed[0] if failed else {"type": "lifespan.shutdown.complete"})


class _Member:
    """One app's lifespan, driven a message at a time."""

    __slots__ = ("to_app", "from_app", "task")

    def __init__(self, app: Any, scope: Scope) -> None:
        self.to_app: asyncio.Queue[Message] = asyncio.Queue()
        self.from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run(app, scope))

    async def _run(self, app: Any, scope: Scope) -> None:
        try:
            await app(scope, self.to_app.get, self.from_app.put)
        finally:
            self.from_app.put_nowait(None)  # the app is done: no more replies

    async def step(self, message: Message) -> Message | None:
        """Send ``message``; the app's reply, or None if it ended (or raised) instead."""
        await self.to_app.put(message)
        return await self.from_app.get()

    async def outcome(self) -> BaseException:
        """Why the app ended early (the exception it raised, or a RuntimeError if it returned)."""
        try:
            await self.task
        except Exception as exc:
            return exc
        return RuntimeError("The application returned during lifespan startup.")


async def _shut_down(members: Any) -> list[Message]:
    failed = []
    for member in members:
        reply = await member.step({"type": "lifespan.shutdown"})
        if reply is not None and reply["type"] == "lifespan.shutdown.failed":
            failed.append(reply)
        if not member.task.done():
            member.task.cancel()
        await asyncio.gather(member.task, return_exceptions=True)
    return failed
