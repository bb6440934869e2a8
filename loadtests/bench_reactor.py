"""Micro-benchmarks of the event loop itself: the Reactor against asyncio's default loop and uvloop.

Not a test: it prints numbers. Four workloads, each run on every loop in the same process,
best of several rounds, the rounds alternating between loops. Rates are per CPU-second of this
process (user + system, `time.process_time`), not per wall-clock second: client and server share
the process and the loop, so CPU time is the loop's cost, and other load on a shared machine
does not decide the ratios.

* callbacks: a chain of call_soon callbacks, each scheduling the next (the ready queue's cost);
* timers:    call_later with spread-out delays, plus as many set-and-cancelled timeouts
             (the heap, lazy cancellation and compaction);
* streams:   TCP ping-pong over asyncio streams on 127.0.0.1 (StreamReader/Writer on the transports);
* protocols: the same ping-pong with bare Protocols (the transports and selector dispatch alone).

Usage, from the repository root::

    python loadtests/bench_reactor.py              # default sizes
    python loadtests/bench_reactor.py --quick      # a smoke run
    python -m cProfile -s cumtime loadtests/bench_reactor.py --only reactor --bench protocols

uvloop is used when installed (``pip install uvloop``) and reported as n/a otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from treadle import reactor  # noqa: E402 (after the path set-up, so the script runs from a checkout)

try:
    import uvloop
except ImportError:  # reported in the table
    uvloop = None

MESSAGE = b"x" * 100


def _loop_factories() -> dict:
    factories = {"asyncio": asyncio.new_event_loop if sys.platform == "win32" else asyncio.SelectorEventLoop,
                 "reactor": reactor.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


# ---------------------------------------------------------------------- workloads: each returns ops/s


def bench_callbacks(loop, count: int) -> float:
    done = loop.create_future()
    remaining = [count]

    def step():
        remaining[0] -= 1
        if remaining[0]:
            loop.call_soon(step)
        else:
            done.set_result(None)

    started = time.process_time()
    # Several chains at once, so every pass of the loop runs a batch, as a busy server's does.
    for _ in range(10):
        loop.call_soon(step)
    loop.run_until_complete(done)
    return count / (time.process_time() - started)


def bench_timers(loop, count: int) -> float:
    done = loop.create_future()
    remaining = [count]
    rng = random.Random(1)

    def fired():
        remaining[0] -= 1
        if not remaining[0]:
            done.set_result(None)

    def noop():
        pass

    started = time.process_time()
    for _ in range(count):
        loop.call_later(rng.random() * 0.05, fired)
        loop.call_later(30, noop).cancel()  # a timeout armed and disarmed, as every request does
    loop.run_until_complete(done)
    return 2 * count / (time.process_time() - started)


async def _echo_streams(port_future, reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _streams(connections: int, messages: int) -> float:
    server = await asyncio.start_server(lambda r, w: _echo_streams(None, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(messages):
            writer.write(MESSAGE)
            await reader.readexactly(len(MESSAGE))
        writer.close()
        await writer.wait_closed()

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.process_time() - started
    server.close()
    await server.wait_closed()
    return connections * messages / elapsed


def bench_streams(loop, connections: int, messages: int) -> float:
    return loop.run_until_complete(_streams(connections, messages))


class _EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class _PingClient(asyncio.Protocol):
    def __init__(self, messages: int, done: asyncio.Future) -> None:
        self.left = messages
        self.done = done
        self.pending = 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(MESSAGE)

    def data_received(self, data):
        self.pending += len(data)
        if self.pending < len(MESSAGE):
            return
        self.pending = 0
        self.left -= 1
        if self.left:
            self.transport.write(MESSAGE)
        else:
            self.transport.close()
            self.done.set_result(None)


async def _protocols(connections: int, messages: int) -> float:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.process_time()
    waiters = []
    for _ in range(connections):
        done = loop.create_future()
        waiters.append(done)
        await loop.create_connection(lambda done=done: _PingClient(messages, done), "127.0.0.1", port)
    await asyncio.gather(*waiters)
    elapsed = time.process_time() - started
    server.close()
    await server.wait_closed()
    return connections * messages / elapsed


def bench_protocols(loop, connections: int, messages: int) -> float:
    return loop.run_until_complete(_protocols(connections, messages))


# ---------------------------------------------------------------------- the run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="comma-separated loops (asyncio,reactor,uvloop)")
    parser.add_argument("--bench", help="comma-separated workloads (callbacks,timers,streams,protocols)")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    rounds = 1 if args.quick else args.rounds
    workloads = {
        "callbacks": (bench_callbacks, (int(1_000_000 * scale),), "callbacks/s"),
        "timers": (bench_timers, (int(200_000 * scale),), "timers/s"),
        "streams": (bench_streams, (10, int(5_000 * scale)), "round trips/s"),
        "protocols": (bench_protocols, (10, int(10_000 * scale)), "round trips/s"),
    }
    if args.bench:
        workloads = {name: workloads[name] for name in args.bench.split(",")}
    factories = _loop_factories()
    loops = args.only.split(",") if args.only else ["asyncio", "reactor", "uvloop"]

    # Rounds alternate between the loops, so a burst of noise on a shared machine hits all of them.
    results: dict[str, dict[str, float]] = {name: {} for name in workloads}
    for name, (fn, fn_args, unit) in workloads.items():
        for _ in range(rounds):
            for kind in loops:
                if kind not in factories:
                    continue
                loop = factories[kind]()
                try:
                    rate = fn(loop, *fn_args)
                finally:
                    loop.close()
                results[name][kind] = max(results[name].get(kind, 0.0), rate)
                print(f"{name:10} {kind:8} {rate:14,.0f} {unit}", file=sys.stderr)

    version = uvloop.__version__ if uvloop else "not installed (n/a)"
    print(f"\nPython {sys.version.split()[0]}, {sys.platform}, best of {rounds} rounds; uvloop {version}\n")
    print("| workload | asyncio | Reactor | uvloop | Reactor / asyncio | Reactor / uvloop |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in results.items():
        print(f"| {name} ({workloads[name][2]}) | {_cell(row, 'asyncio')} | {_cell(row, 'reactor')} | "
              f"{_cell(row, 'uvloop')} | {_ratio(row, 'asyncio')} | {_ratio(row, 'uvloop')} |")


def _cell(row: dict, kind: str) -> str:
    return f"{row[kind]:,.0f}" if kind in row else "n/a"


def _ratio(row: dict, kind: str) -> str:
    return f"{row['reactor'] / row[kind]:.2f}×" if kind in row and "reactor" in row else "n/a"

if __name__ == "__main__":
    main()
