"""One HTTP request/response exchange with an ASGI app: the ``RequestCycle``.

The cycle owns what the ASGI HTTP spec defines — ``receive()`` and ``send()``, the order
messages may come in, their validation — and nothing about the wire. It talks to its
connection through the ``Channel`` interface (server/exchange.py), so the same cycle
serves an HTTP/1.1 connection or an HTTP/2 stream (one connection, many cycles).

Response states (``ResponseState``), in the only order the spec allows::

    START --http.response.start--> BODY --body, more_body=False--> DONE
                                     \\--(start had trailers=True)--> TRAILERS --trailers--> DONE
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from treadle.server.exchange import Channel, ClientDisconnected, ResponseState
from treadle.server.observe.logging import error_logger
from treadle.server.types import ASGIApp, Message, Scope
from treadle.server.waiters import wake

START, BODY, TRAILERS, DONE = ResponseState


class RequestCycle:
    """The ASGI side of one request. Made by ``AsgiRunner.start``; the connection feeds it the
    body it has already parsed, then calls ``begin()`` to run the app."""

    __slots__ = (
        "scope",
        "channel",
        "runner",
        "loop",
        "task",
        "body",
        "body_size",
        "more_body",
        "body_delivered",
        "disconnected",
        "response_state",
        "trailers",
        "waiter",
    )

    def __init__(self, scope: Scope, channel: Channel, runner: Any) -> None:
        self.scope = scope
        self.channel = channel
        self.runner = runner  # asgi.runner.AsgiRunner: the app, the loop (a Reactor), the server's request tasks
        self.loop = runner.loop
        self.task: asyncio.Task | None = None  # set if the app is still running after its first step
        self.body: list[bytes] = []  # received, not yet handed to the app
        self.body_size = 0
        self.more_body = True  # the client has more body to send
        self.body_delivered = False  # the final http.request message was returned
        self.disconnected = False
        self.response_state = START
        self.trailers = False
        self.waiter: asyncio.Future | None = None  # receive() parked here

    # -- fed by the connection --------------------------------------------------------------

    def feed_body(self, data: bytes) -> int:
        """Buffer a chunk of request body; returns the bytes now buffered (for flow control)."""
        self.body.append(data)
        self.body_size += len(data)
        self._wake()
        return self.body_size

    def end_body(self) -> None:
        self.more_body = False
        self._wake()

    def disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def end_stream(self) -> None:
        """The server ends this response (an event stream, at shutdown): an app listening in
        ``receive()`` is told the client has gone; one that is not is cancelled, since it would
        otherwise learn of it only at its next ``send()``."""
        listening = self.waiter is not None
        self.disconnect()
        if not listening and self.task is not None:
            self.task.cancel()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        wake(waiter)

    # -- the ASGI callables ------------------------------------------------------------------

    def begin(self) -> None:
        """Run the app: its first step now, the rest (if it waits for anything) as a task.

        Run eagerly, a plaintext handler has finished, response written, before this returns.
        Only a task that outlives its first step joins the server's set (which shutdown
        waits on); ``run`` takes it out again, so no done-callback is needed.
        """
        runner = self.runner
        task = self.loop.create_eager_task(self.run(runner.app))
        if not task.done():
            self.task = task
            runner.tasks.add(task)

    async def run(self, app: ASGIApp) -> None:
        """Run the app for this request and clean up after whatever it did."""
        try:
            await app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            # Only the server cancels request tasks (graceful shutdown ran out of time).
            if self.response_state != DONE:
                self.channel.abort(self)
        except BaseException as exc:
            if self.disconnected:
                # Whatever the app raises once the client has gone (ClientDisconnected from
                # send(), or a framework's own exception for it, as Starlette's
                # ClientDisconnect) follows the client's leaving: not the app's error.
                error_logger.debug("The app raised after the client disconnected: %r", exc)
            else:
                error_logger.error("Exception in ASGI application", exc_info=exc)
            if self.response_state == START:
                if not self.disconnected:
                    self.channel.send_error_response(self, 500)
            elif self.response_state != DONE:
                self.channel.abort(self)
        else:
            if self.response_state == START:
                if not self.disconnected:
                    error_logger.error("ASGI callable returned without starting response.")
                    self.channel.send_error_response(self, 500)
            elif self.response_state != DONE and not self.disconnected:
                error_logger.error("ASGI callable returned without completing response.")
                self.channel.abort(self)
        finally:
            self.channel.cycle_done(self)
            if self.task is not None:
                self.runner.tasks.discard(self.task)

    async def receive(self) -> Message:
        if self.more_body and not self.body and not self.disconnected and self.response_state != DONE:
            self.channel.want_body(self)
        # Wait for body, or — once the whole body was delivered — for the client to go
        # away or the response to finish (apps poll receive() to detect disconnects).
        while not self.body and (self.more_body or self.body_delivered):
            if self.disconnected or self.response_state == DONE:
                break
            self.waiter = waiter = self.loop.create_future()
            await waiter
        if self.disconnected or self.response_state == DONE:
            return {"type": "http.disconnect"}
        body = self.body
        if len(body) == 1:
            data = body[0]
        else:
            data = b"".join(body)
        body.clear()
        self.body_size = 0
        more = self.more_body
        if more:
            self.channel.want_body(self)  # buffer drained: reading may resume
        else:
            self.body_delivered = True
        return {"type": "http.request", "body": data, "more_body": more}

    async def _send_file(self, message: Message) -> None:
        """``http.response.zerocopysend``: ``offset`` defaults to the file's position, ``count``
        to the rest of the file."""
        file = message["file"]
        offset = message.get("offset")
        if offset is None:
            offset = file.tell()
        count = message.get("count")
        if count is None:
            count = os.fstat(file.fileno()).st_size - offset
        await self.channel.send_file(self, file, offset, count)

    async def _send_path(self, message: Message) -> None:
        """``http.response.pathsend``: the whole file at ``path`` (absolute, as the extension
        says) is the rest of the body. Opened in the default executor: opening may block."""
        path = message.get("path")
        if not isinstance(path, str) or not os.path.isabs(path):
            raise RuntimeError(f"'path' of 'http.response.pathsend' must be an absolute path, got {path!r}.")
        file = await self.loop.run_in_executor(None, open, path, "rb")
        try:
            await self.channel.send_file(self, file, 0, os.fstat(file.fileno()).st_size)
        finally:
            file.close()

    async def send(self, message: Message) -> None:
        if (type(message) is not dict and not isinstance(message, Mapping)) or "type" not in message:
            raise RuntimeError(f"ASGI message must be a dict with a 'type' key, got {message!r}.")
        mtype = message["type"]
        if self.disconnected:
            raise ClientDisconnected("The client disconnected.")
        state = self.response_state
        if state == BODY:
            if mtype == "http.response.zerocopysend":
                # The file's bytes go first; an empty body message then ends or continues the body.
                await self._send_file(message)
                mtype, message = "http.response.body", {"more_body": message.get("more_body", False)}
            elif mtype == "http.response.pathsend":
                await self._send_path(message)
                mtype, message = "http.response.body", {}
            if mtype != "http.response.body":
                raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{mtype}'.")
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    raise RuntimeError(
                        f"'body' of 'http.response.body' must be bytes, got {type(body).__name__}."
                    )
                body = bytes(body)
            more = bool(message.get("more_body", False))
            if not more:
                self.response_state = TRAILERS if self.trailers else DONE
            waiter = self.channel.send_body(self, body, more)
            if not more:
                self._wake()
            if waiter is not None:
                await waiter
            if self.disconnected and more:
                raise ClientDisconnected("The client disconnected.")
        elif state == START:
            if mtype == "http.response.early_hint":
                # A 103 Early Hints with these Link fields, before the response (RFC 8297).
                links = message.get("links", ())
                if not all(isinstance(link, (bytes, bytearray)) for link in links):
                    raise RuntimeError(f"'links' of 'http.response.early_hint' must be bytes, got {links!r}.")
                self.channel.send_early_hint(self, [(b"link", bytes(link)) for link in links])
                return
            if mtype != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{mtype}'.")
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
                raise RuntimeError(
                    f"'status' of 'http.response.start' must be an int in 200..599, got {status!r}."
                )
            trailers = bool(message.get("trailers", False))
            self.channel.start_response(self, status, message.get("headers", ()), trailers)
            self.trailers = trailers
            self.response_state = BODY
        elif state == TRAILERS:
            if mtype != "http.response.trailers":
                raise RuntimeError(f"Expected ASGI message 'http.response.trailers', but got '{mtype}'.")
            more = bool(message.get("more_trailers", False))
            if not more:
                self.response_state = DONE
            self.channel.send_trailers(self, message.get("headers", ()), more)
            if not more:
                self._wake()
        else:
            raise RuntimeError(f"Unexpected ASGI message '{mtype}' sent, after response already completed.")
