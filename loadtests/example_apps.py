"""The example apps the scenarios load: small, deterministic, and checkable by the client.

Every app answers what the locustfile can verify (sizes, echoes, ids), so a load test
catches wrong responses, not only slow ones. Raw ASGI apps ignore the lifespan scope; the
runner starts the server with ``--lifespan off``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI
from pydantic import BaseModel

CHUNK = 64 * 1024
_BLOCK = bytes(range(256)) * (CHUNK // 256)  # a recognisable pattern, not zeros


async def _text(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _query_int(scope: dict, name: str, default: int) -> int:
    values = parse_qs(scope["query_string"].decode("latin-1")).get(name)
    return int(values[0]) if values else default


# -- plaintext --------------------------------------------------------------------------------


async def plaintext(scope: dict, receive: Any, send: Any) -> None:
    """``GET /`` → ``Hello, World!`` (the TechEmpower plaintext test)."""
    if scope["type"] == "http":
        await _text(send, 200, b"Hello, World!")


async def always_500(scope: dict, receive: Any, send: Any) -> None:
    """A broken app: every request gets a 500. The runner must report the failures."""
    if scope["type"] == "http":
        await _text(send, 500, b"broken on purpose\n")


# -- JSON API (FastAPI) -----------------------------------------------------------------------

json_api = FastAPI()


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@json_api.get("/items/{item_id}")
async def read_item(item_id: int) -> dict:
    return {"id": item_id, "name": f"item {item_id}", "price": item_id / 100, "tags": ["a", "b"]}


@json_api.post("/items")
async def create_item(item: Item) -> dict:
    return {"name": item.name, "total": round(item.price * len(item.tags or [1]), 2)}


# -- uploads and streamed downloads -----------------------------------------------------------


async def files(scope: dict, receive: Any, send: Any) -> None:
    """``POST /upload`` → the body's size and SHA-256; ``GET /download?size=N`` → N bytes,
    streamed in 64 KiB chunks (chunked framing, so the server cannot buffer it whole)."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/upload":
        digest, size, more = hashlib.sha256(), 0, True
        while more:
            message = await receive()
            digest.update(message.get("body", b""))
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _text(send, 200, b"%d %s" % (size, digest.hexdigest().encode()))
    elif scope["path"] == "/download":
        left = _query_int(scope, "size", 1024 * 1024)
        headers = [(b"content-type", b"application/octet-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while left > 0:
            block = _BLOCK[: min(left, CHUNK)]
            left -= len(block)
            await send({"type": "http.response.body", "body": block, "more_body": left > 0})
    else:
        await _text(send, 404, b"not found")


# -- slow endpoints, sync and async -----------------------------------------------------------


async def slow_async(scope: dict, receive: Any, send: Any) -> None:
    """``GET /slow?ms=N``: waits N ms on the loop (async I/O stand-in), then answers."""
    if scope["type"] == "http":
        ms = _query_int(scope, "ms", 20)
        await asyncio.sleep(ms / 1000)
        await _text(send, 200, b"async slept %d" % ms)


def slow_wsgi(environ: dict, start_response: Any) -> list[bytes]:
    """``GET /sync/slow?ms=N`` (mounted at /sync): blocks its worker thread N ms, as a
    blocking database call would; the reactor keeps serving the async routes meanwhile."""
    ms = int(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["20"])[0])
    time.sleep(ms / 1000)
    body = b"sync slept %d" % ms
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


# -- websocket echo ---------------------------------------------------------------------------


async def ws_echo(scope: dict, receive: Any, send: Any) -> None:
    """A WebSocket at any path echoing every message back, text or bytes."""
    if scope["type"] == "http":
        await _text(send, 426, b"use a websocket")
        return
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:  # websocket.disconnect
            return
