"""WebSocket echo benchmark: round trips per second, Treadle against uvicorn, in one run.

Each server is started as a subprocess on 127.0.0.1 serving the echo app below (the same
file, loaded as ``bench_ws:app``); then ``--connections`` clients (the ``websockets``
library, compression off so framing is measured, not zlib) each send a small message and
wait for its echo, over and over, for ``--seconds``. Every server is stopped before the
next starts. Run: ``python loadtests/bench_ws.py`` (about 15 s with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
START_TIMEOUT = 15.0


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Echo every message back; the app under test for both servers."""
    if scope["type"] != "websocket":
        return  # lifespan: not used
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message.get("bytes"), "text": message.get("text")})


def servers(port: int) -> dict[str, list[str]]:
    common = ["bench_ws:app", "--app-dir", HERE, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return {
        "treadle (wsproto)": [sys.executable, "-m", "server", *common, "--no-access-log"],
        "uvicorn (wsproto)": [sys.executable, "-m", "uvicorn", *common, "--ws", "wsproto", "--no-access-log"],
        "uvicorn (websockets)": [sys.executable, "-m", "uvicorn", *common, "--ws", "websockets", "--no-access-log"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening in time")


async def client(url: str, seconds: float, payload: bytes) -> int:
    from websockets.asyncio.client import connect

    round_trips = 0
    async with connect(url, compression=None, max_size=None) as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await ws.send(payload)
            await ws.recv()
            round_trips += 1
    return round_trips


async def measure(url: str, connections: int, seconds: float, size: int) -> float:
    payload = os.urandom(size)
    await asyncio.gather(*(client(url, 0.2, payload) for _ in range(connections)))  # warm up
    started = time.monotonic()
    counts = await asyncio.wait_for(
        asyncio.gather(*(client(url, seconds, payload) for _ in range(connections))), timeout=seconds + 30
    )
    return sum(counts) / (time.monotonic() - started)


def run_one(name: str, command: list[str], port: int, args: argparse.Namespace) -> float | None:
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)
        return asyncio.run(measure(f"ws://127.0.0.1:{port}/", args.connections, args.seconds, args.size))
    except Exception as exc:
        print(f"{name}: failed: {exc}", file=sys.stderr)
        return None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per server")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    args = parser.parse_args()
    print(f"echo round trips/s: {args.connections} connections, {args.size}-byte messages, {args.seconds:g} s each")
    results = {}
    for name, command in servers(free_port()).items():
        port = int(command[command.index("--port") + 1])
        results[name] = run_one(name, command, port, args)
    baseline = results.get("uvicorn (websockets)")
    for name, rate in results.items():
        if rate is None:
            print(f"  {name:22} failed")
            continue
        relative = f"  ({rate / baseline:.2f}x uvicorn/websockets)" if baseline else ""
        print(f"  {name:22} {rate:10,.0f}{relative}")


if __name__ == "__main__":
    main()
