"""WebSocket attacks on the echo route: ping floods (read, and unread), messages in tiny
fragments, compression bombs.
"""

from __future__ import annotations

import asyncio
import time

from wsproto.events import BytesMessage, CloseConnection, Ping, Pong

from loadtests.attack.clients import WebSocketPeer, gather_bounded, spread
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target

BOMB = 64 * 1024 * 1024  # zeros: ~64 KB deflated, past the default 16 MiB --ws-max-size


async def _open_many(target: Target, count: int, **options) -> list[WebSocketPeer]:
    return list(await asyncio.gather(*(WebSocketPeer.open(target.host, target.port, **options) for _ in range(count))))


async def ping_flood(target: Target, quick: bool) -> Outcome:
    """Pings as fast as the server takes them, for a while, reading the pongs."""
    count, seconds = (5, 3.0) if quick else (20, 20.0)
    peers = await _open_many(target, count)

    async def flood(ws: WebSocketPeer) -> tuple[int, int]:
        batch = ws.frames(Ping(payload=b"p" * 125)) * 100
        sent = pongs = 0
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            ws.peer.send(batch)
            await ws.peer.writer.drain()
            sent += 100
            pongs += sum(isinstance(e, Pong) for e in await ws.events(0.001))
        while events := await ws.events(1.0):  # the rest of the answers
            pongs += sum(isinstance(e, Pong) for e in events)
        return sent, pongs

    results = [r for r in await gather_bounded((flood(ws) for ws in peers), seconds + 30) if r is not None]
    for ws in peers:
        ws.peer.close()
    sent, pongs = sum(r[0] for r in results), sum(r[1] for r in results)
    rate = sent / seconds
    return Outcome(count, f"{sent:,} pings ({rate:,.0f}/s), {pongs:,} answered", len(results) == count)


async def ping_flood_unread(target: Target, quick: bool) -> Outcome:
    """Pings, and none of the pongs read: a pong per turn of input at most, none once the
    peer is behind, so nothing piles up in the server for it."""
    count, seconds = (5, 3.0) if quick else (20, 20.0)
    peers = await _open_many(target, count, rcvbuf=4096)
    before = target.sample()

    async def flood(ws: WebSocketPeer) -> int:
        batch = ws.frames(Ping(payload=b"p" * 125)) * 100
        sent, stop_at = 0, time.monotonic() + seconds
        while time.monotonic() < stop_at:
            ws.peer.send(batch)
            await asyncio.wait_for(ws.peer.writer.drain(), stop_at + 10 - time.monotonic())
            sent += 100
        return sent

    results = await gather_bounded((flood(ws) for ws in peers), seconds + 15)
    during = target.sample()
    for ws in peers:
        ws.peer.close()
    sent = sum(r for r in results if r is not None)
    growth = None if before.rss_kib is None or during.rss_kib is None else during.rss_kib - before.rss_kib
    shown = "" if growth is None else f"; the server grew {max(0, growth) / 1024:.1f} MiB"
    return Outcome(count, f"{sent:,} pings ({sent / seconds:,.0f}/s) whose pongs nobody read{shown}",
                   None not in results and (growth is None or growth < 8 * 1024))


async def tiny_fragments(target: Target, quick: bool) -> Outcome:
    """One message in one-byte fragments (7 bytes on the wire each), echoed back whole."""
    count, fragments = (3, 20_000) if quick else (10, 500_000)
    peers = await _open_many(target, count)

    async def send(ws: WebSocketPeer) -> bool:
        ws.send(BytesMessage(data=b"f", message_finished=False))  # the first frame, then continuations
        continuation = ws.frames(BytesMessage(data=b"f", message_finished=False))
        last = ws.frames(BytesMessage(data=b"f", message_finished=True))
        for start in range(0, fragments - 2, 10_000):
            ws.peer.send(continuation * min(10_000, fragments - 2 - start))
            await ws.peer.writer.drain()
            await ws.events(0.001)  # answers the server's keepalive pings meanwhile
        ws.peer.send(last)
        got = 0
        stop_at = time.monotonic() + 60
        while got < fragments and time.monotonic() < stop_at:
            for event in await ws.events(1.0):
                if isinstance(event, BytesMessage):
                    got += len(event.data)
        return got == fragments

    started = time.monotonic()
    results = await gather_bounded((send(ws) for ws in peers), 90)
    elapsed = time.monotonic() - started
    for ws in peers:
        ws.peer.close()
    echoed = sum(1 for r in results if r)
    return Outcome(count, f"{echoed}/{count} messages of {fragments:,} one-byte fragments echoed whole "
                          f"in {elapsed:.1f} s ({count * fragments / elapsed:,.0f} frames/s)", echoed == count)


async def compression_bombs(target: Target, quick: bool) -> Outcome:
    """64 MiB of zeros, deflated to ~64 KB: the server must stop at --ws-max-size with 1009."""
    count = 3 if quick else 10
    peers = await _open_many(target, count, compress=True)

    async def bomb(ws: WebSocketPeer) -> float | None:
        started = time.monotonic()
        ws.send(BytesMessage(data=b"\0" * BOMB))
        await ws.peer.writer.drain()
        while events := await ws.events(started + 20 - time.monotonic()):
            for event in events:
                if isinstance(event, CloseConnection):
                    return time.monotonic() - started if event.code == 1009 else None
        return None

    results = await gather_bounded((bomb(ws) for ws in peers), 60)
    for ws in peers:
        ws.peer.close()
    closed = [r for r in results if r is not None]
    return Outcome(count, f"{len(closed)}/{count} closed with 1009 at {spread(closed)} after sending, "
                          f"nothing inflated past the limit", len(closed) == count)


ATTACKS = [
    Attack("ping floods", "WebSocket", ping_flood, time_limit=90),
    Attack("ping floods, pongs never read", "WebSocket", ping_flood_unread, time_limit=60),
    Attack("messages in one-byte fragments", "WebSocket", tiny_fragments, time_limit=120),
    Attack("compression bombs (64 MiB of zeros)", "WebSocket", compression_bombs, time_limit=90),
]
