"""The app every attack is aimed at: ordinary routes, and the ways an app can fail.

``app`` is ASGI (``loadtests.attack.apps:app``); ``wsgi`` is the same failures as WSGI,
mounted at ``/wsgi`` by the harness (``--mount /wsgi=loadtests.attack.apps:wsgi``).

Routes: ``/`` plaintext (the control client's), ``/json``, ``/upload`` (reads the body,
answers its size), ``/big`` (16 MiB in 64 KiB sends, as a download would), ``/stream``
(64 KiB chunks until the client is gone), ``/sleep?ms=N``; the faults ``/fault/NAME`` with
NAME one of ``ASGI_FAULTS`` (and ``never-answers``); a WebSocket echo on any path.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

CHUNK = b"d" * (64 * 1024)
BIG = 256  # chunks: 16 MiB
HELLO = b"Hello, world!"

# Each fault, what a client sees when the server meets it properly, and the error log line
# that says so (None: nothing to log).
ASGI_FAULTS = {
    "raise-before-start": ("500", "Exception in ASGI application"),
    "return-without-response": ("500", "returned without starting response"),
    "raise-after-start": ("closed mid-body", "Exception in ASGI application"),
    "never-reads-body": ("200", None),
}
WSGI_FAULTS = {
    "raise-before-start": ("500", "Exception in WSGI application"),
    "raise-in-iterable": ("closed mid-body", "Exception in WSGI application"),
    "raise-in-close": ("200", "Exception closing the iterable"),
    "never-reads-body": ("200", None),
}


class AppFault(Exception):
    """What the fault routes raise: the server must log it, answer or close, and serve on."""


def _plain(body: bytes, content_type: bytes = b"text/plain") -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]


async def app(scope: dict, receive: Callable, send: Callable) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if kind == "websocket":
        await _echo(receive, send)
        return
    path = scope["path"]
    if path.startswith("/fault/"):
        await _fault(path[len("/fault/") :], receive, send)
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        while True:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    if path == "/big":
        headers = _plain(b"")[:1] + [(b"content-length", b"%d" % (len(CHUNK) * BIG))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(BIG - 1):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": CHUNK})
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if path == "/sleep":
        await asyncio.sleep(int(parse_qs(scope["query_string"].decode()).get("ms", ["100"])[0]) / 1000)
    if path == "/json":
        body = json.dumps({"message": "Hello, world!", "path": path}).encode()
        headers = _plain(body, b"application/json")
    elif path == "/upload":
        body = b"%d" % size
        headers = _plain(body)
    else:
        body = HELLO
        headers = _plain(body)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _fault(name: str, receive: Callable, send: Callable) -> None:
    start = {"type": "http.response.start", "status": 200, "headers": _plain(b"0123456789")}
    if name == "raise-before-start":
        raise AppFault("before the response started")
    if name == "return-without-response":
        return
    if name == "never-answers":
        await asyncio.Event().wait()  # until the server is shut down
    if name != "never-reads-body":
        while (await receive()).get("more_body"):
            pass
    await send(start)
    if name == "raise-after-start":
        await send({"type": "http.response.body", "body": b"01234", "more_body": True})
        raise AppFault("after the response started")
    await send({"type": "http.response.body", "body": b"0123456789"})


async def _echo(receive: Callable, send: Callable) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")})


class _FailingClose:
    """A body that is sent whole, then raises in ``close()``."""

    def __iter__(self) -> Any:
        return iter([b"01234", b"56789"])

    def close(self) -> None:
        raise AppFault("in close()")


def _failing_iterable(start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "10")])
    yield b"01234"
    raise AppFault("inside the iterable")


def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    name = environ["PATH_INFO"].rpartition("/")[2]
    if name == "raise-before-start":
        raise AppFault("before start_response")
    if name != "never-reads-body":
        environ["wsgi.input"].read()
    if name == "raise-in-iterable":
        return _failing_iterable(start_response)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    if name == "raise-in-close":
        return _FailingClose()
    return [b"0123456789"]
