"""Apps for the CLI tests, which load them by import string in a subprocess."""

from __future__ import annotations

import asyncio
import sys


async def hello(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("http only")  # lifespan auto must tolerate this
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


async def slow(scope, receive, send):
    """Prints 'entered' when a request arrives, then answers after 1 s."""
    if scope["type"] != "http":
        raise RuntimeError("http only")
    print("entered", flush=True)
    await asyncio.sleep(1.0)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"done"})


async def failing_startup(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "cannot reach the database"})


def create_app():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b"from factory"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


not_callable = 42

if "--crash-on-import" in sys.argv:  # pragma: no cover
    raise SystemExit("should not happen")


async def hang(scope, receive, send):
    """Prints 'entered', then never answers (for forced-shutdown tests)."""
    if scope["type"] != "http":
        raise RuntimeError("http only")
    print("entered", flush=True)
    await asyncio.sleep(3600)
