"""Streaming apps for the shutdown tests (tests/test_shutdown_streams.py), run in a server
process: endless event streams three ways (sse-starlette, Starlette's plain
StreamingResponse, and a WSGI generator), and a finite download that must not be cut short.

Each endless stream prints a line from its ``finally``, so the test can see that shutdown
ran the app's clean-up while the interpreter was whole.
"""

from __future__ import annotations

import asyncio
import time

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route


async def sse(request: Request) -> EventSourceResponse:
    async def events():
        try:
            number = 0
            while True:
                yield {"data": f"event {number}"}
                number += 1
                await asyncio.sleep(0.2)
        finally:
            print("sse generator closed", flush=True)

    return EventSourceResponse(events(), ping=60)


async def plain(request: Request) -> StreamingResponse:
    async def events():
        try:
            number = 0
            while True:
                yield f"data: event {number}\n\n".encode()
                number += 1
                await asyncio.sleep(0.2)
        finally:
            print("plain generator closed", flush=True)

    return StreamingResponse(events(), media_type="text/event-stream")


async def download(request: Request) -> StreamingResponse:
    """Forty 1 KiB chunks over about two seconds: it must finish during a graceful shutdown."""

    async def chunks():
        for number in range(40):
            yield b"%04d" % number * 256
            await asyncio.sleep(0.05)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


app = Starlette(routes=[Route("/sse", sse), Route("/plain", plain), Route("/download", download)])


def wsgi_events(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])

    def events():
        try:
            number = 0
            while True:
                yield f"data: event {number}\n\n".encode()
                number += 1
                time.sleep(0.2)
        finally:
            print("wsgi generator closed", flush=True)

    return events()
