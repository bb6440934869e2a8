"""The stats endpoint (--stats-port) under clients that trickle and clients that flood it.

A second control client reads /stats while they do; then the server is told to stop with
the tricklers still connected, and the time it takes to exit is measured.
"""

from __future__ import annotations

import asyncio
import time

from loadtests.attack.clients import Peer, connect_many, gather_bounded, status_of
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target


async def _stats_query(target: Target) -> tuple[int | None, float]:
    """GET /stats: the status (None: no answer within 5 s) and the seconds it took."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.stats_port), 5)
        writer.write(b"GET /stats HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    except (OSError, asyncio.TimeoutError):
        return None, time.monotonic() - started
    return status_of(data), time.monotonic() - started


async def trickle_and_flood(target: Target, quick: bool) -> Outcome:
    tricklers, silent, seconds = (3, 40, 4.0) if quick else (10, 100, 15.0)
    assert target.stats_port is not None
    slow = await connect_many(target.host, target.stats_port, tricklers)
    quiet = await connect_many(target.host, target.stats_port, silent)

    async def trickle(peer: Peer) -> None:
        for byte in b"GET /stats HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 10_000:
            try:
                peer.send(bytes([byte]))
                await peer.writer.drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.5)

    dribbling = [asyncio.ensure_future(trickle(peer)) for peer in slow]
    queries: list[tuple[int | None, float]] = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        queries.append(await _stats_query(target))
        await asyncio.sleep(0.1)
    # Stop the server with tricklers still connected (a fresh one, in case the first were cut off).
    slow += await connect_many(target.host, target.stats_port, tricklers)
    dribbling += [asyncio.ensure_future(trickle(peer)) for peer in slow[tricklers:]]
    exit_seconds = None
    if target.child is not None:
        started = time.monotonic()
        target.stop()
        exit_seconds = time.monotonic() - started
    await gather_bounded(dribbling, 1)
    for peer in slow + quiet:
        peer.close()
    ok = sum(1 for status, _ in queries if status == 200)
    busy = sum(1 for status, _ in queries if status == 503)
    took = sorted(seconds for _, seconds in queries)
    p99 = took[min(len(took) - 1, int(0.99 * len(took)))] * 1000 if took else 0.0
    exit_text = "" if exit_seconds is None else f"; the server exited {exit_seconds:.1f} s after SIGTERM"
    held = ok + busy == len(queries) and p99 < 1000 and (exit_seconds is None or exit_seconds < 5)
    return Outcome(tricklers + silent, f"{tricklers} trickling a byte / 0.5 s, {silent} silent: of {len(queries)} "
                   f"GET /stats, {ok} answered 200 and {busy} 503 (all slots taken), p99 {p99:.0f} ms{exit_text}",
                   held)


ATTACKS = [
    Attack("a trickle and a flood", "stats endpoint", trickle_and_flood, stats=True, time_limit=60,
           needs_url=True),
]
