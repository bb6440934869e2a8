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

import h2.config
import h2.connection
import h2.settings
import hpack

from loadtests import apps
from treadle.reactor import Reactor
from treadle.server.apps.appset import AppSet
from treadle.server.apps.middleware import wrap_runner
from treadle.server.config import Config
from treadle.server.http1.connection import Http1Connection
from treadle.server.http2.connection import Http2Connection
from treadle.server.state import ServerState

WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CASES = {"asgi": (apps.asgi, "asgi3"), "wsgi": (apps.wsgi, "wsgi")}
ENGINES = ("fast", "h11", "h2")  # the two HTTP/1.1 parsers, and HTTP/2 (prior knowledge)


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
    http = "fast" if engine == "h2" else engine
    config = Config(app, interface=interface, access_log=False, log_level="warning", http=http)
    state = ServerState(config)
    appset = AppSet(config)
    runner = wrap_runner(appset.runner(loop, state), config)  # as the server does (proxy headers)
    transport = RecordingTransport()
    if engine == "h2":
        protocol: Any = Http2Connection(config, state, runner, loop)
        preface, messages = _h2_requests(requests)
    else:
        protocol = Http1Connection(config, state, runner, loop)
        preface, messages = b"", [WRK] * requests
    protocol.connection_made(transport)
    if preface:
        protocol.data_received(preface)
    try:
        start = time.perf_counter()
        for message in messages:
            transport.written = loop.create_future()
            # From a callback, as the transport calls it: not from inside this task.
            loop.call_soon(protocol.data_received, message)
            await transport.written
        elapsed = time.perf_counter() - start
    finally:
        protocol.connection_lost(None)
        if appset.pool is not None:
            appset.pool.shutdown()
    return elapsed / requests


def _h2_requests(count: int) -> tuple[bytes, list[bytes]]:
    """A client's preface (with windows too large to close during the run: the recording
    transport never acknowledges anything) and ``count`` GET requests' HEADERS frames, made
    beforehand so that the client's own cost is not measured: one header block, encoded so
    that it leaves HPACK's dynamic table alone, under each stream id in turn."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.local_settings = h2.settings.Settings(client=True, initial_values={4: 2**31 - 1})
    client.initiate_connection()
    client.increment_flow_control_window(2**31 - 1 - 65535)
    fields = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"127.0.0.1:8000")]
    block = hpack.Encoder().encode([hpack.NeverIndexedHeaderTuple(name, value) for name, value in fields])
    end_stream_and_headers = 0x1 | 0x4
    head = len(block).to_bytes(3, "big") + bytes((0x1, end_stream_and_headers))
    return client.data_to_send(), [head + (2 * i + 1).to_bytes(4, "big") + block for i in range(count)]


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
