"""HTTP/1.1 attacks: slow heads, slow bodies, pipelining floods, slow readers, resets and
half-closes, oversized and countless headers. (HTTP/2's own: h2_attacks.py.)

Each is an ``async def`` taking the target and whether to run small (``--quick``), and
returns what the server did, measured from the attacking side.
"""

from __future__ import annotations

import asyncio
import time

from loadtests.attack.clients import Peer, connect_many, gather_bounded, request, spread, status_of
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target

HEAD_TIMEOUT = {True: 1.0, False: 10.0}  # quick / full: --timeout-request-header (10 s is the default)
BODY_TIMEOUT = {True: 1.0, False: 10.0}  # --timeout-request-body (default 60 s: shortened to keep the run short)
SEND_TIMEOUT = {True: 1.0, False: 10.0}  # --timeout-send (default 60 s, likewise)


def _count(quick: bool, full: int, small: int) -> int:
    return small if quick else full


async def slowloris(target: Target, quick: bool) -> Outcome:
    """Heads that never end: a header line a second, for ever."""
    count, deadline = _count(quick, 1000, 50), HEAD_TIMEOUT[quick]
    peers = await connect_many(target.host, target.port, count)

    async def dribble(peer: Peer) -> tuple[int | None, float]:
        peer.send(b"GET / HTTP/1.1\r\nHost: attack\r\n")
        got = b""
        while True:
            try:
                chunk = await asyncio.wait_for(peer.reader.read(65536), 1.0)
            except asyncio.TimeoutError:
                peer.send(b"X-Slow: still coming\r\n")  # progress must not move the deadline
                continue
            except ConnectionError:
                break
            if not chunk:
                break
            got += chunk
        return status_of(got), time.monotonic() - peer.opened

    results = await gather_bounded((dribble(peer) for peer in peers), deadline + 20)
    for peer in peers:
        peer.close()
    answered = [r for r in results if r is not None and r[0] == 408]
    held = len(answered) == count
    return Outcome(count, f"{len(answered)}/{count} got 408 and were closed at {spread([r[1] for r in answered])} "
                          f"(deadline {deadline:g} s)", held)


async def stalled_bodies(target: Target, quick: bool) -> Outcome:
    """A head and 10 of the 1,000,000 body bytes it announces; then nothing."""
    count, deadline = _count(quick, 1000, 50), BODY_TIMEOUT[quick]
    peers = await connect_many(target.host, target.port, count)
    for peer in peers:
        peer.send(request("POST", "/upload", ["Content-Length: 1000000"]) + b"x" * 10)
    results = await gather_bounded((peer.until_closed(deadline + 20) for peer in peers), deadline + 25)
    for peer in peers:
        peer.close()
    answered = [r for r in results if r is not None and status_of(r[0]) == 408 and r[1] is not None]
    return Outcome(count, f"{len(answered)}/{count} got 408 and were closed at {spread([r[1] for r in answered])} "
                          f"(idle deadline {deadline:g} s)", len(answered) == count)


async def trickled_bodies(target: Target, quick: bool) -> Outcome:
    """A body byte every 2 s: never idle long enough for the body deadline (as with nginx's
    client_body_timeout, an idle clock). Measured: what holding them costs; the attackers
    leave after a while."""
    count, hold = _count(quick, 1000, 50), (4.0 if quick else 30.0)
    peers = await connect_many(target.host, target.port, count)
    for peer in peers:
        peer.send(request("POST", "/upload", ["Content-Length: 1000000"]))
    before = target.sample()
    stop_at = time.monotonic() + hold
    while time.monotonic() < stop_at:
        for peer in peers:
            peer.send(b"x")
        await asyncio.sleep(2.0)
    during = target.sample()
    alive = sum(1 for peer in peers if not peer.reader.at_eof())
    for peer in peers:
        peer.close()
    cost = "?" if before.rss_kib is None or during.rss_kib is None else \
        f"{max(0, during.rss_kib - before.rss_kib) / count:.0f} KiB"
    return Outcome(count, f"held, by design (an idle clock): {alive}/{count} still open after {hold:g} s, "
                          f"{cost} each; the client left", alive == count)


async def pipelining_flood(target: Target, quick: bool) -> Outcome:
    """GET after GET, pipelined, reading none of the answers. The server answers them all
    until the kernel's buffers are full (CPU-bound: some seconds per connection), then
    stops; the send deadline then drops the client."""
    count, deadline = _count(quick, 10, 5), SEND_TIMEOUT[quick]
    window = deadline + (20 if quick else 60)
    peers = await connect_many(target.host, target.port, count, rcvbuf=4096)
    flood = request() * 10_000

    async def push(peer: Peer) -> tuple[int, float | None]:
        sent, started = 0, time.monotonic()
        stop_at = started + window
        try:
            while time.monotonic() < stop_at:
                peer.send(flood)
                await asyncio.wait_for(peer.writer.drain(), stop_at - time.monotonic())
                sent += len(flood)
        except ConnectionError:
            return sent, time.monotonic() - started
        except asyncio.TimeoutError:
            pass  # the server stopped reading, and never dropped us
        return sent, None

    results = await gather_bounded((push(peer) for peer in peers), window + 5)
    for peer in peers:
        peer.close()
    dropped = [r for r in results if r is not None and r[1] is not None]
    most = max((r[0] for r in results if r is not None), default=0)
    return Outcome(count, f"{len(dropped)}/{count} dropped at {spread([r[1] for r in dropped])} "
                          f"(send deadline {deadline:g} s, after the kernel buffers filled); one had sent "
                          f"{most / 1e6:.1f} MB of requests by then", len(dropped) == count)


async def _never_read(target: Target, quick: bool, path: str) -> Outcome:
    count, deadline = _count(quick, 200, 20), SEND_TIMEOUT[quick]
    peers = await connect_many(target.host, target.port, count, rcvbuf=4096)
    for peer in peers:
        peer.send(request("GET", path))

    async def wait_dropped(peer: Peer) -> float | None:
        # Reading nothing, but watching for the server's close: the socket errors out.
        try:
            await asyncio.wait_for(_eof_without_reading(peer), deadline + 20)
        except asyncio.TimeoutError:
            return None
        return time.monotonic() - peer.opened

    results = await gather_bounded((wait_dropped(peer) for peer in peers), deadline + 25)
    for peer in peers:
        peer.close()
    dropped = [r for r in results if r is not None]
    return Outcome(count, f"{len(dropped)}/{count} dropped at {spread(dropped)} (send deadline {deadline:g} s)",
                   len(dropped) == count)


async def _eof_without_reading(peer: Peer) -> None:
    """Wait until the server has closed or reset the connection, reading nothing: writes
    of a byte now and then fail once it is gone (an HTTP request it would buffer at most)."""
    while True:
        await asyncio.sleep(0.2)
        if peer.writer.is_closing():
            return
        try:
            peer.send(b" ")
            await peer.writer.drain()
        except ConnectionError:
            return


async def large_response_never_read(target: Target, quick: bool) -> Outcome:
    """GET /big (16 MiB), reading none of it."""
    return await _never_read(target, quick, "/big")


async def stream_never_read(target: Target, quick: bool) -> Outcome:
    """GET /stream (endless), reading none of it."""
    return await _never_read(target, quick, "/stream")


async def slow_steady_readers(target: Target, quick: bool) -> Outcome:
    """GET /big read at 16 KiB a second: slow, but never idle long enough to be dropped."""
    count, hold = _count(quick, 50, 10), (SEND_TIMEOUT[quick] * 3)
    peers = await connect_many(target.host, target.port, count, rcvbuf=4096)
    for peer in peers:
        peer.send(request("GET", "/big"))

    async def sip(peer: Peer) -> int:
        got, stop_at = 0, time.monotonic() + hold
        while time.monotonic() < stop_at:
            chunk = await asyncio.wait_for(peer.reader.read(16384), 10)
            if not chunk:
                return -got  # closed on us
            got += len(chunk)
            await asyncio.sleep(1.0)
        return got

    results = await gather_bounded((sip(peer) for peer in peers), hold + 15)
    for peer in peers:
        peer.close()
    kept = [r for r in results if r is not None and r > 0]
    return Outcome(count, f"{len(kept)}/{count} kept for {hold:g} s (3 send deadlines), each taking 16 KiB/s",
                   len(kept) == count)


async def resets_and_half_closes(target: Target, quick: bool) -> Outcome:
    """Clients that reset (RST) or half-close (FIN) mid-head, mid-body and mid-response."""
    per_kind = _count(quick, 200, 20)
    kinds = [(how, when) for how in ("reset", "half-close") for when in ("mid-head", "mid-body", "mid-response")]
    count = per_kind * len(kinds)
    before = target.sample()
    for how, when in kinds:
        peers = await connect_many(target.host, target.port, per_kind)
        for peer in peers:
            if when == "mid-head":
                peer.send(b"GET /stream HTTP/1.1\r\nHost: attack\r\n")
            elif when == "mid-body":
                peer.send(request("POST", "/upload", ["Content-Length: 1000000"]) + b"x" * 5000)
            else:
                peer.send(request("GET", "/stream"))
        if when == "mid-response":
            await gather_bounded((peer.reader.read(65536) for peer in peers), 10)
        else:
            await asyncio.sleep(0.2)  # the server has read what they sent
        for peer in peers:
            if how == "reset":
                peer.reset()
            else:
                peer.half_close()
        await asyncio.sleep(0.5)
        for peer in peers:
            peer.close()
    # Half-closed clients that read nothing more are held up to the send deadline.
    started = time.monotonic()
    settled = await _fds_back(target, before.fds, SEND_TIMEOUT[quick] + 10)
    if before.fds is None:
        return Outcome(count, f"{per_kind} of each of {len(kinds)} kinds (descriptors not measured)", True)
    return Outcome(count, f"{per_kind} of each of {len(kinds)} kinds; every connection let go "
                          f"{time.monotonic() - started:.1f} s after the last client left" if settled else
                          f"{per_kind} of each of {len(kinds)} kinds; connections still held", settled)


async def _fds_back(target: Target, baseline: int | None, timeout: float) -> bool:
    """Wait until the server's descriptors are back to ``baseline`` (give or take two)."""
    stop_at = time.monotonic() + timeout
    while baseline is not None:
        fds = target.sample().fds
        if fds is None or fds <= baseline + 2:
            return True
        if time.monotonic() > stop_at:
            return False
        await asyncio.sleep(0.1)
    return True


async def oversized_headers(target: Target, quick: bool) -> Outcome:
    """Heads of one 1 MiB field, and heads of 5,000 tiny ones."""
    count = _count(quick, 1000, 50)
    huge = b"GET / HTTP/1.1\r\nHost: attack\r\nX-Huge: " + b"h" * (1 << 20) + b"\r\n\r\n"
    fields = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(5000))
    countless = b"GET / HTTP/1.1\r\nHost: attack\r\n" + fields + b"\r\n"
    statuses: dict[int | None, int] = {}
    for payload in (huge, countless):
        for start in range(0, count // 2, 100):
            peers = await connect_many(target.host, target.port, min(100, count // 2 - start))
            for peer in peers:
                peer.send(payload)
            results = await gather_bounded((peer.until_closed(10, limit=256) for peer in peers), 15)
            for peer in peers:
                peer.close()
            for result in results:
                status = status_of(result[0]) if result is not None else None
                statuses[status] = statuses.get(status, 0) + 1
    got = ", ".join(f"{n}× {status or 'no answer'}" for status, n in sorted(statuses.items(), key=str))
    return Outcome(count, f"{got}, each closed", statuses.get(431, 0) == count)


ATTACKS = [
    Attack("slowloris heads", "HTTP/1.1", slowloris,
           lambda quick: ["--timeout-request-header", f"{HEAD_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("stalled bodies", "HTTP/1.1", stalled_bodies,
           lambda quick: ["--timeout-request-body", f"{BODY_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("trickled bodies (a byte / 2 s)", "HTTP/1.1", trickled_bodies, time_limit=90),
    Attack("pipelining floods, answers unread", "HTTP/1.1", pipelining_flood,
           lambda quick: ["--timeout-send", f"{SEND_TIMEOUT[quick]:g}"], time_limit=120),
    Attack("slow readers: 16 MiB response never read", "HTTP/1.1", large_response_never_read,
           lambda quick: ["--timeout-send", f"{SEND_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("slow readers: endless stream never read", "HTTP/1.1", stream_never_read,
           lambda quick: ["--timeout-send", f"{SEND_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("slow readers: 16 KiB/s, steady", "HTTP/1.1", slow_steady_readers,
           lambda quick: ["--timeout-send", f"{SEND_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("resets and half-closes mid-request and mid-response", "HTTP/1.1", resets_and_half_closes,
           lambda quick: ["--timeout-send", f"{SEND_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("oversized and countless headers", "HTTP/1.1", oversized_headers, time_limit=120),
]
