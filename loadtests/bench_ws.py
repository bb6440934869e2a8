"""WebSocket echo benchmark: round trips per second, Treadle against uvicorn, in one run.

Each server is started as a subprocess on 127.0.0.1 serving the echo app below (the same
file, loaded as ``bench_ws:app``); then ``--connections`` clients (the ``websockets``
library, compression off so framing is measured, not zlib) each send a small message and
wait for its echo, over and over, for ``--seconds``. The servers take turns for
``--rounds`` rounds and the median round counts, so a noisy machine hurts all alike.
All servers are stopped at the end, whatever happens.
Run: ``python loadtests/bench_ws.py`` (about 30 s with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
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


def commands() -> dict[str, tuple[list[str], int]]:
    """Each server's command line and its port."""
    result = {}
    for name, program, extra in (
        ("treadle (wsproto)", ["-m", "treadle"], []),
        ("uvicorn (wsproto)", ["-m", "uvicorn"], ["--ws", "wsproto"]),
        ("uvicorn (websockets)", ["-m", "uvicorn"], ["--ws", "websockets"]),
    ):
        port = free_port()
        common = ["bench_ws:app", "--app-dir", HERE, "--host", "127.0.0.1", "--port", str(port)]
        result[name] = ([sys.executable, *program, *common, *extra, "--log-level", "warning", "--no-access-log"], port)
    return result


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


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per server per round")
    parser.add_argument("--rounds", type=int, default=3, help="turns each server gets; the median counts")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    args = parser.parse_args()
    print(
        f"echo round trips/s: {args.connections} connections, {args.size}-byte messages, "
        f"median of {args.rounds} x {args.seconds:g} s"
    )
    procs: dict[str, tuple[subprocess.Popen, int]] = {}
    rates: dict[str, list[float]] = {}
    try:
        for name, (command, port) in commands().items():
            proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs[name] = (proc, port)
        for proc, port in procs.values():
            wait_listening(port, proc)
        for _ in range(args.rounds):
            for name, (_, port) in procs.items():
                rate = asyncio.run(measure(f"ws://127.0.0.1:{port}/", args.connections, args.seconds, args.size))
                rates.setdefault(name, []).append(rate)
    finally:
        for proc, _ in procs.values():
            stop(proc)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians.get("uvicorn (websockets)")
    for name, rate in medians.items():
        relative = f"  ({rate / baseline:.2f}x uvicorn/websockets)" if baseline else ""
        print(f"  {name:22} {rate:10,.0f}{relative}")


if __name__ == "__main__":
    main()
