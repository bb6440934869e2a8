"""Micro-benchmark: the server's whole per-request Python path, on the real reactor, sans sockets.

A connection protocol (fast or h11 engine) is fed a request by hand, the app runs as it
would in the server (ASGI as a task, WSGI on the worker pool), and the response lands in
a transport that only records it. What this leaves out is the kernel: epoll, recv, send.
So it isolates what our code costs per request, which wrk cannot (its figure mixes in the
syscalls and the client). Run: ``python loadtests/cycle_bench.py`` (add ``--profile`` for
a cProfile listing of the ASGI cycle).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from typing import Any

from loadtests import apps
from treadle.reactor import Reactor
from treadle.server.apps.appset import AppSet
from treadle.server.apps.middleware import wrap_runner
from treadle.server.config import Config
from treadle.server.http1.connection import Http1Connection
from treadle.server.state import ServerState

WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CASES = {"asgi": (apps.asgi, "asgi3"), "wsgi": (apps.wsgi, "wsgi")}
ENGINES = ("fast", "h11")


class RecordingTransport(asyncio.Transport):
    """Enough of a socket transport for a connection protocol: writes are counted, not sent."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False
        self.written: asyncio.Future | None = None  # the driver waits here for each response

    def write(self, data: Any) -> None:
        if self.written is not None and not self.written.done():
            self.written.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def set_write_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closing = True


async def drive(engine: str, app: Any, interface: str, requests: int) -> float:
    """Serve ``requests`` requests on one connection; return seconds per request."""
    loop = asyncio.get_running_loop()
    config = Config(app, interface=interface, access_log=False, log_level="warning", http=engine)
    state = ServerState(config)
    appset = AppSet(config)
    runner = wrap_runner(appset.runner(loop, state), config)  # as the server does (proxy headers)
    transport = RecordingTransport()
    protocol = Http1Connection(config, state, runner, loop)
    protocol.connection_made(transport)
    try:
        start = time.perf_counter()
        for _ in range(requests):
            transport.written = loop.create_future()
            # From a callback, as the transport calls it: not from inside this task.
            loop.call_soon(protocol.data_received, WRK)
            await transport.written
        elapsed = time.perf_counter() - start
    finally:
        protocol.connection_lost(None)
        if appset.pool is not None:
            appset.pool.shutdown()
    return elapsed / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--profile", action="store_true", help="cProfile the fast engine's ASGI cycle")
    parser.add_argument(
        "--only",
        choices=[f"{label}-{engine}" for label in CASES for engine in ENGINES],
        help="serve --requests requests of one case, once, and print nothing: for valgrind's "
        "instruction counts, which are steady however busy the machine is",
    )
    args = parser.parse_args()
    loop = Reactor()
    try:
        if args.only:
            label, engine = args.only.split("-")
            loop.run_until_complete(drive(engine, *CASES[label], args.requests))
            return
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            loop.run_until_complete(drive("fast", apps.asgi, "asgi3", args.requests))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
            return
        for label, (app, interface) in CASES.items():
            for engine in ENGINES:
                loop.run_until_complete(drive(engine, app, interface, 2000))  # warm-up
                seconds = min(loop.run_until_complete(drive(engine, app, interface, args.requests)) for _ in range(3))
                print(f"{label.upper()} {engine:5} {seconds * 1e6:6.1f} µs/request")
    finally:
        loop.close()


if __name__ == "__main__":
    main()
