"""The ASGI lifespan protocol: startup before the first connection, shutdown after the last.

Modes (``--lifespan``): ``on`` requires the app to support it (an exception fails startup);
``auto`` tolerates apps that raise on the lifespan scope — they simply do not use it;
``off`` never sends the scope. ``lifespan.startup.failed`` always fails startup, and the
app's message is logged. The ``state`` dict the app fills in at startup is copied
(shallowly) into every request scope.
"""

from __future__ import annotations

import asyncio
from typing import Any

from treadle.server.observe.logging import error_logger
from treadle.server.types import ASGIApp, Message


class Lifespan:
    def __init__(self, app: ASGIApp, mode: str, state: dict[str, Any]) -> None:
        self.app = app
        self.mode = mode
        self.state = state
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.startup_event = asyncio.Event()
        self.shutdown_event = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.unsupported = False  # the app raised (auto mode) or returned: lifespan not in use
        self.error = False
        self.startup_failed = False
        self.shutdown_failed = False
        self.phase = "startup"

    async def startup(self) -> bool:
        """Run the app's startup. Returns False if the server must not start."""
        error_logger.info("Waiting for application startup.")
        self.task = asyncio.get_running_loop().create_task(self._main())
        await self.queue.put({"type": "lifespan.startup"})
        await self.startup_event.wait()
        if self.startup_failed or (self.error and self.mode == "on"):
            error_logger.error("Application startup failed. Exiting.")
            return False
        if not self.unsupported:
            error_logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        if self.unsupported or self.error or self.task is None or self.task.done():
            return
        error_logger.info("Waiting for application shutdown.")
        self.phase = "shutdown"
        await self.queue.put({"type": "lifespan.shutdown"})
        await self.shutdown_event.wait()
        if self.shutdown_failed or self.error:
            error_logger.error("Application shutdown failed.")
        else:
            error_logger.info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            if self.startup_failed or self.shutdown_failed:
                return  # already reported through the failed message
            if self.mode == "auto" and not self.startup_event.is_set():
                self.unsupported = True
                error_logger.info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                self.error = True
                error_logger.error("Exception in 'lifespan' protocol", exc_info=exc)
        else:
            if not self.startup_event.is_set():
                self.unsupported = True  # returned without answering: does not do lifespan
        finally:
            self.startup_event.set()
            self.shutdown_event.set()

    async def receive(self) -> Message:
        return await self.queue.get()

    async def send(self, message: Message) -> None:
        mtype = message.get("type") if isinstance(message, dict) else None
        if self.phase == "startup" and not self.startup_event.is_set():
            if mtype == "lifespan.startup.complete":
                self.startup_event.set()
                return
            if mtype == "lifespan.startup.failed":
                self.startup_failed = True
                if message.get("message"):
                    error_logger.error(message["message"])
                self.startup_event.set()
                return
        elif self.phase == "shutdown" and not self.shutdown_event.is_set():
            if mtype == "lifespan.shutdown.complete":
                self.shutdown_event.set()
                return
            if mtype == "lifespan.shutdown.failed":
                self.shutdown_failed = True
                if message.get("message"):
                    error_logger.error(message["message"])
                self.shutdown_event.set()
                return
        raise RuntimeError(f"Unexpected ASGI lifespan message {mtype!r} during {self.phase}.")
