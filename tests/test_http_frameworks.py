"""Real frameworks over real HTTP: Starlette and FastAPI with httpx, and curl."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import shutil
import subprocess

import httpx
import pytest
from conftest import wait_until
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route


def make_starlette(events: list) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield {"greeting": "hi"}
        events.append("shutdown")

    async def home(request: Request):
        return PlainTextResponse(f"{request.state.greeting} {request.url.path} {request.query_params['q']}")

    async def upload(request: Request):
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return JSONResponse({"received": total})

    async def stream(request: Request):
        async def gen():
            for i in range(100):
                yield f"line {i}\n".encode()

        return StreamingResponse(gen(), media_type="text/plain")

    async def background(request: Request):
        return PlainTextResponse("queued", background=BackgroundTask(events.append, "background ran"))

    return Starlette(
        routes=[
            Route("/", home),
            Route("/upload", upload, methods=["POST"]),
            Route("/stream", stream),
            Route("/background", background),
        ],
        lifespan=lifespan,
    )


def test_starlette(serve):
    events: list = []
    srv = serve(make_starlette(events), lifespan="on")
    assert events == ["startup"]
    with httpx.Client(base_url=srv.url) as client:
        r = client.get("/", params={"q": "x y"})
        assert (r.status_code, r.text) == (200, "hi / x y")
        r = client.post("/upload", content=iter([b"a" * 100_000] * 10))
        assert r.json() == {"received": 1_000_000}
        r = client.get("/stream")
        assert r.text == "".join(f"line {i}\n" for i in range(100))
        r = client.get("/background")
        assert r.text == "queued"
        wait_until(lambda: "background ran" in events)
        assert client.get("/missing").status_code == 404
        assert client.head("/stream").status_code == 200
    srv.stop()
    assert events[-1] == "shutdown"


class Item(BaseModel):
    name: str
    price: float


def make_fastapi() -> FastAPI:
    app = FastAPI()

    @app.post("/items/{item_id}")
    async def create(item_id: int, item: Item):
        return {"id": item_id, "name": item.name, "total": item.price * 2}

    @app.get("/sync")
    def sync_endpoint():  # runs in the loop's default executor
        return {"sync": True}

    return app


def test_fastapi(serve):
    srv = serve(make_fastapi(), lifespan="auto")
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/items/7", json={"name": "spoon", "price": 1.5})
        assert r.json() == {"id": 7, "name": "spoon", "total": 3.0}
        r = client.post("/items/7", json={"name": "spoon"})
        assert r.status_code == 422
        assert client.get("/sync").json() == {"sync": True}
        assert client.get("/openapi.json").json()["paths"]


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def _curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, timeout=30)


@needs_curl
def test_curl(serve, tmp_path):
    srv = serve(make_starlette([]), lifespan="on")
    out = _curl("-i", f"{srv.url}/?q=curl")
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b"hi / curl"

    big = tmp_path / "upload.bin"
    big.write_bytes(b"u" * 3_000_000)
    # -T sends chunked with Expect: 100-continue semantics exercised by curl
    out = _curl("-T", str(big), "-X", "POST", "-H", "Transfer-Encoding: chunked", f"{srv.url}/upload")
    assert json.loads(out.stdout) == {"received": 3_000_000}, out.stderr

    out = _curl("--http1.0", f"{srv.url}/stream")
    assert out.stdout.count(b"line") == 100

    out = _curl("-I", f"{srv.url}/stream")
    assert out.stdout.startswith(b"HTTP/1.1 200")

    # several requests over one connection
    out = _curl("-v", f"{srv.url}/?q=1", f"{srv.url}/?q=2")
    assert out.stdout == b"hi / 1hi / 2"
    assert b"Re-using existing connection" in out.stderr or b"Reusing existing connection" in out.stderr


def test_a_client_leaving_a_starlette_stream_is_not_an_error(serve, caplog):
    """Starlette's StreamingResponse, on ASGI 2.4, turns the OSError that send() raises once the
    client has gone into its own ClientDisconnect and lets it out of the app: that follows the
    client's leaving and is logged at debug, not as an "Exception in ASGI application". The
    generator stops at once (its finally runs when Starlette drops it)."""
    closed = []

    async def stream(request: Request):
        async def endless():
            try:
                while True:
                    yield b"x" * 65536
            finally:
                closed.append(True)

        return StreamingResponse(endless(), media_type="application/octet-stream")

    caplog.set_level("INFO", logger="treadle.error")  # a debug record would keep the generator alive
    srv = serve(Starlette(routes=[Route("/", stream)]))
    with srv.connect() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_head()[0] == 200
    wait_until(lambda: not srv.state.tasks)
    wait_until(lambda: (gc.collect(), closed)[1])  # collect: PyPy frees it only then (and returns None)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
