"""Real libraries, unmodified, on the Reactor: anyio, Starlette, FastAPI and httpx.

Each test checks it really ran on a Reactor (not on a loop the library made for itself).
"""

from __future__ import annotations

import asyncio
import http.server
import sys
import threading
import time
from typing import Optional

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from treadle import reactor

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup  # anyio's dependency before 3.11


def _on_reactor() -> bool:
    return isinstance(asyncio.get_running_loop(), reactor.Reactor)


def run_anyio(fn, *args):
    return anyio.run(fn, *args, backend="asyncio", backend_options={"loop_factory": reactor.new_event_loop})


# ---------------------------------------------------------------------- anyio


def test_anyio_task_group_runs_children_concurrently() -> None:
    async def main():
        assert _on_reactor()
        order = []

        async def child(name, delay):
            await anyio.sleep(delay)
            order.append(name)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(child, "slow", 0.2)
            tg.start_soon(child, "fast", 0.05)
            tg.start_soon(child, "middle", 0.1)
        return order, time.monotonic() - started

    order, elapsed = run_anyio(main)
    assert order == ["fast", "middle", "slow"]
    assert elapsed < 0.35 + 1.0  # concurrent: near the longest delay, not the sum


def test_anyio_task_group_propagates_a_child_error_and_cancels_siblings() -> None:
    async def main():
        cancelled = []

        async def sibling():
            try:
                await anyio.sleep(30)
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise

        async def failing():
            await anyio.sleep(0.01)
            raise ValueError("child failed")

        with pytest.raises(ExceptionGroup) as info:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sibling)
                tg.start_soon(failing)
        return info.value, cancelled

    group, cancelled = run_anyio(main)
    assert isinstance(group.exceptions[0], ValueError)
    assert cancelled == [True]


def test_anyio_cancel_scopes_and_timeouts() -> None:
    async def main():
        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(30)
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.05):
                await anyio.sleep(30)
        with anyio.CancelScope() as outer:
            outer.cancel()
            await anyio.sleep(30)
        assert outer.cancelled_caught
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.01)  # a shielded scope still sleeps normally
        return True

    assert run_anyio(main)


def test_anyio_to_thread_and_from_thread() -> None:
    async def main():
        loop_thread = threading.get_ident()

        def blocking(x):
            called_back = anyio.from_thread.run(_async_double, x)
            return threading.get_ident(), called_back

        worker_thread, doubled = await anyio.to_thread.run_sync(blocking, 21)
        return loop_thread, worker_thread, doubled

    loop_thread, worker_thread, doubled = run_anyio(main)
    assert worker_thread != loop_thread
    assert doubled == 42


async def _async_double(x):
    assert _on_reactor()
    await anyio.sleep(0)
    return x * 2


def test_anyio_memory_streams() -> None:
    async def main():
        send, receive = anyio.create_memory_object_stream(1)
        received = []

        async def consumer():
            async with receive:
                async for item in receive:
                    received.append(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            async with send:
                for i in range(100):
                    await send.send(i)
        return received

    assert run_anyio(main) == list(range(100))


# ---------------------------------------------------------------------- Starlette and FastAPI over ASGITransport


def _starlette_app() -> Starlette:
    async def hello(request):
        return PlainTextResponse(f"hello on {type(asyncio.get_running_loop()).__name__}")

    async def echo(request):
        return JSONResponse({"got": await request.json()})

    return Starlette(routes=[Route("/", hello), Route("/echo", echo, methods=["POST"])])


def _fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int, q: Optional[str] = None):  # noqa: UP045 (FastAPI evaluates it; no `|` on 3.9)
        await asyncio.sleep(0)
        return {"item_id": item_id, "q": q, "on_reactor": _on_reactor()}

    @app.get("/sync")
    def sync_endpoint():  # FastAPI runs plain functions in a worker thread
        return {"thread": threading.current_thread().name}

    return app


def test_starlette_through_httpx_asgi_transport() -> None:
    async def main():
        transport = httpx.ASGITransport(app=_starlette_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            hello = await client.get("/")
            echo = await client.post("/echo", json={"a": [1, 2]})
            missing = await client.get("/nope")
        return hello, echo, missing

    hello, echo, missing = reactor.run(main())
    assert hello.status_code == 200 and hello.text == "hello on Reactor"
    assert echo.json() == {"got": {"a": [1, 2]}}
    assert missing.status_code == 404


def test_fastapi_through_httpx_asgi_transport() -> None:
    async def main():
        transport = httpx.ASGITransport(app=_fastapi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            item = await client.get("/items/5", params={"q": "x"})
            invalid = await client.get("/items/not-a-number")
            sync = await client.get("/sync")
        return item, invalid, sync

    item, invalid, sync = reactor.run(main())
    assert item.json() == {"item_id": 5, "q": "x", "on_reactor": True}
    assert invalid.status_code == 422
    assert sync.status_code == 200 and sync.json()["thread"] != threading.main_thread().name


# ---------------------------------------------------------------------- httpx over a real socket


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = f"you asked for {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_httpx_async_client_makes_a_real_request(loopback_server) -> None:
    async def main():
        assert _on_reactor()
        async with httpx.AsyncClient(timeout=5) as client:
            responses = await asyncio.gather(*(client.get(f"{loopback_server}/n/{i}") for i in range(5)))
        return responses

    responses = reactor.run(main())
    assert [r.status_code for r in responses] == [200] * 5
    assert [r.text for r in responses] == [f"you asked for /n/{i}" for i in range(5)]
