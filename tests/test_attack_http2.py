"""Hostile HTTP/2 clients, many at once (docs/reliability.md): each flood ends the attacker's
connection having cost the server at most its budget in apps started, while a client on
another connection is served promptly; the attacks h2 and our guards meet in forms the
one-connection tests (tests/test_http2_limits.py) do not send.

The attackers are raw frame writers (tests/h2_helpers.py ``RawH2``); the control client is
``H2Client`` on a connection of its own.
"""

from __future__ import annotations

import threading
import time

import h2.connection
import pytest
from conftest import Gate, text_app, wait_until
from h2.errors import ErrorCodes
from h2_helpers import H2Client, RawH2
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

ATTACKERS = 10
LATENCY = 1.0  # seconds: the control client's answer, at most, during an attack


def _goaway(frame) -> bool:
    return isinstance(frame, GoAwayFrame)


def control_latency(port: int) -> float:
    """Seconds for one request on a fresh HTTP/2 connection."""
    started = time.monotonic()
    with H2Client(port) as client:
        assert client.response(client.request("/control")).status == 200
    return time.monotonic() - started


def send_all(raw: RawH2, *frames) -> None:
    """Send, unless the server has already closed on us (it may, mid-flood)."""
    try:
        raw.send(*frames)
    except (ConnectionError, OSError):
        pass


def headers(raw: RawH2, path: str) -> HeadersFrame:
    """The next stream's HEADERS frame, ending the stream, built but not sent."""
    frame = HeadersFrame(raw.next_stream, raw.header_block(path))
    raw.next_stream += 2
    frame.flags.add("END_HEADERS")
    frame.flags.add("END_STREAM")
    return frame


def collect(raw: RawH2, wanted, count: int) -> list:
    """The first ``count`` frames from the server that are ``wanted``."""
    got: list = []

    def enough(frame) -> bool:
        if wanted(frame):
            got.append(frame)
        return len(got) >= count

    raw.frames(enough)
    return got


def answered(raw: RawH2, streams: list[int]) -> set[int]:
    """Wait for these streams' responses to end; the ones that did."""
    wanted = set(streams)
    done = collect(raw, lambda f: f.stream_id in wanted and "END_STREAM" in f.flags, len(wanted))
    return {f.stream_id for f in done}


def ended(raw: RawH2, code: int = ErrorCodes.ENHANCE_YOUR_CALM) -> bool:
    """The server ended the connection: a GOAWAY with ``code``, then the close; or a reset
    that took the GOAWAY with it (we were still sending when it closed)."""
    try:
        frames = raw.frames(lambda frame: False, timeout=10)
    except (ConnectionError, OSError):
        return True
    goaways = [f for f in frames if _goaway(f)]
    return not goaways or goaways[-1].error_code == code


@pytest.fixture
def counting_app():
    """Counts the requests that reach it; they wait until released (``/control`` does not)."""
    gate = Gate()
    started: list[str] = []
    lock = threading.Lock()

    async def app(scope, receive, send):
        if scope["path"] != "/control":
            with lock:
                started.append(scope["path"])
            await gate.wait()
        await text_app(b"ok")(scope, receive, send)

    app.started = started
    app.release = gate.open
    return app


def flood_in_parallel(port: int, frames_for, rounds: int) -> list[bool]:
    """``ATTACKERS`` connections, each sending ``frames_for(raw)`` ``rounds`` times from its
    own thread, measuring the control client meanwhile; whether each was ended as it should."""
    results: list[bool] = []
    latencies: list[float] = []

    def attacker() -> None:
        with RawH2(port) as raw:
            for _ in range(rounds):
                send_all(raw, *frames_for(raw))
            results.append(ended(raw))

    threads = [threading.Thread(target=attacker) for _ in range(ATTACKERS)]
    for thread in threads:
        thread.start()
    latencies.append(control_latency(port))
    for thread in threads:
        thread.join(30)
    latencies.append(control_latency(port))
    assert max(latencies) < LATENCY
    return results


def test_rapid_reset_from_many_connections_starts_no_more_apps_than_the_budget(serve_once, counting_app):
    """CVE-2023-44487 from ten connections at once: each runs out of its reset budget, so at
    most that many of its streams ever reached the app, out of the thousands it opened."""
    budget = 50
    srv = serve_once(counting_app, h2_max_resets=budget)

    def pairs(raw: RawH2) -> list:
        frames = []
        for _ in range(100):
            opened = headers(raw, "/reset")
            frames += [opened, RstStreamFrame(opened.stream_id, error_code=ErrorCodes.CANCEL)]
        return frames

    results = flood_in_parallel(srv.port, pairs, rounds=10)
    assert results == [True] * ATTACKERS
    # A stream that reached the app was reset since (charged: the budget at most) or is
    # still open (the concurrent-stream limit, 100, at most): 10,000 were opened.
    assert len(counting_app.started) <= ATTACKERS * (budget + 100)
    counting_app.release()
    wait_until(lambda: not srv.state.connections, timeout=10)


@pytest.mark.parametrize("provoke", ["data after end of stream", "window overflow"])
def test_each_kind_of_provoked_reset_is_charged_to_the_budget(serve_once, counting_app, provoke):
    """MadeYouReset (CVE-2025-8671): a frame that breaks a stream's rules is answered with a
    reset of that stream alone (RFC 9113 5.4.2) while its app runs on; each such reset is
    charged, so a flood of them ends the connection."""
    budget = 20
    srv = serve_once(counting_app, h2_max_resets=budget)
    code = ErrorCodes.STREAM_CLOSED if provoke.startswith("data") else ErrorCodes.FLOW_CONTROL_ERROR

    def wrong(stream: int):
        if provoke.startswith("data"):
            return DataFrame(stream, b"late")  # RFC 9113 5.1: half-closed (remote)
        return WindowUpdateFrame(stream, window_increment=2**31 - 1)  # RFC 9113 6.9.1: overflow

    with RawH2(srv.port) as raw:
        first = raw.headers("/provoked")
        raw.send(wrong(first))
        frames = raw.frames(lambda f: isinstance(f, RstStreamFrame))
        assert frames[-1].stream_id == first and frames[-1].error_code == code
        assert not any(_goaway(f) for f in frames)  # one is a stream error, not the connection's
        for _ in range(budget + 5):
            opened = headers(raw, "/provoked")
            send_all(raw, opened, wrong(opened.stream_id))
        assert ended(raw)
    assert control_latency(srv.port) < LATENCY
    assert len(counting_app.started) <= budget + 6
    counting_app.release()


def test_control_frames_within_the_budget_are_all_answered(serve_once):
    """The budget is a rate: a client pinging now and then (as browsers and gRPC keep-alives
    do) is answered every time and never runs out; only a flood does."""
    srv = serve_once(text_app(), h2_max_control_frames=50)
    with RawH2(srv.port) as raw:
        for i in range(45):  # under the budget: all answered
            raw.send(PingFrame(0, b"%08d" % i))
        acks = collect(raw, lambda f: isinstance(f, PingFrame), 45)
        assert [f.opaque_data for f in acks] == [b"%08d" % i for i in range(45)]
        raw.send(*[PingFrame(0, b"flooding")] * 100)
        assert ended(raw)


def test_ping_floods_from_many_connections_end_each_and_spare_the_others(serve_once):
    srv = serve_once(text_app(), h2_max_control_frames=100)
    results = flood_in_parallel(srv.port, lambda raw: [PingFrame(0, b"12345678")] * 100, rounds=5)
    assert results == [True] * ATTACKERS
    wait_until(lambda: not srv.state.connections, timeout=10)


def test_a_flood_of_empty_continuation_frames_is_a_protocol_error(serve_once):
    """The CONTINUATION flood's other form: empty frames never grow the block, so the size
    guard never trips; each costs a frame's work. h2 takes 64 to a block, then ends the
    connection with PROTOCOL_ERROR."""
    srv = serve_once(text_app())
    with RawH2(srv.port) as raw:
        raw.send(HeadersFrame(1, raw.header_block()))  # no END_HEADERS
        send_all(raw, *[ContinuationFrame(1, b"")] * 10_000)
        assert ended(raw, ErrorCodes.PROTOCOL_ERROR)
    assert control_latency(srv.port) < LATENCY


def test_a_header_list_that_decodes_past_the_limit_never_reaches_the_app(serve_once, counting_app):
    """An HPACK bomb: one 4,000-byte field in the dynamic table, then its index a hundred
    times (a byte each): 3 KB on the wire, 400 KB decoded. Decoding stops at
    --limit-request-head-size and the connection ends with ENHANCE_YOUR_CALM."""
    srv = serve_once(counting_app, limit_request_head_size=16384)
    with RawH2(srv.port) as raw:
        fields = [(":method", "GET"), (":path", "/bomb"), (":scheme", "http"), (":authority", "x")]
        block = raw.encoder.encode(fields + [("x-bomb", "b" * 4000)] * 100)
        assert len(block) < 16384  # the guard on the encoded block lets it through
        frame = HeadersFrame(1, block)
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        raw.send(frame)
        assert ended(raw)
    assert counting_app.started == []
    assert control_latency(srv.port) < LATENCY


def test_refused_streams_never_reach_the_app_and_are_served_when_retried(serve_once, counting_app):
    """REFUSED_STREAM means "not processed" (RFC 9113 8.7): a client may retry. Twice the
    limit at once, on three connections: each gets exactly the limit, the rest are refused
    without reaching the app, and the refused ones, retried, are served."""
    limit = 10
    srv = serve_once(counting_app, h2_max_concurrent_streams=limit)
    raws = [RawH2(srv.port) for _ in range(3)]
    try:
        accepted: dict[RawH2, list[int]] = {}
        refused: dict[RawH2, list[int]] = {}
        for raw in raws:
            streams = [raw.headers(f"/{i}") for i in range(2 * limit)]
            resets = collect(raw, lambda f: isinstance(f, RstStreamFrame), limit)
            refused[raw] = [f.stream_id for f in resets]
            accepted[raw] = streams[:limit]
            assert refused[raw] == streams[limit:]
            assert {f.error_code for f in resets} == {ErrorCodes.REFUSED_STREAM}
        wait_until(lambda: len(counting_app.started) == 3 * limit)
        counting_app.release()
        for raw in raws:
            assert answered(raw, accepted[raw]) == set(accepted[raw])
            retried = [raw.headers("/retried") for _ in refused[raw]]
            assert answered(raw, retried) == set(retried)
        assert counting_app.started.count("/retried") == 3 * limit
    finally:
        for raw in raws:
            raw.close()


@pytest.mark.parametrize("how", ["zero window", "socket unread"])
def test_many_clients_that_take_nothing_are_dropped_at_the_send_deadline(serve_once, how):
    """Ten clients ask for 32 MiB each and take none of it: with their windows shut
    (SETTINGS_INITIAL_WINDOW_SIZE 0), or wide open and their sockets never read. Each app
    waits in send() with little queued; each client is dropped once it has taken nothing for
    --timeout-send, its app told; a client on another connection is served meanwhile."""
    chunk, chunks, deadline = 64 * 1024, 512, 0.5
    sent: list[int] = []

    async def app(scope, receive, send):
        if scope["path"] == "/control":
            return await text_app(b"ok")(scope, receive, send)
        total = 0
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(chunks):
                await send({"type": "http.response.body", "body": b"x" * chunk, "more_body": True})
                total += chunk
            await send({"type": "http.response.body", "body": b""})
        except OSError:  # ClientDisconnected: the client was dropped
            pass
        finally:
            sent.append(total)

    srv = serve_once(app, timeout_send=deadline, timeout_graceful_shutdown=0.5)
    if how == "zero window":
        settings = [SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})]
    else:
        settings = [SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}),
                    WindowUpdateFrame(0, window_increment=2**31 - 1 - 65535)]
    raws = [RawH2(srv.port) for _ in range(ATTACKERS)]
    try:
        for raw in raws:
            raw.send(*settings)
            raw.headers("/")
        started = time.monotonic()
        assert control_latency(srv.port) < LATENCY
        wait_until(lambda: len(sent) == ATTACKERS, timeout=10)
        assert time.monotonic() - started >= deadline
        assert max(sent) < chunk * chunks  # none finished: all were dropped
        if how == "zero window":
            assert max(sent) <= 4 * chunk  # the stream's queue, not the response, is held
        wait_until(lambda: len(srv.state.connections) == 0, timeout=5)
    finally:
        for raw in raws:
            raw.close()


def test_provoked_resets_in_one_read_start_no_more_apps_than_the_budget(serve_once, counting_app):
    """MadeYouReset in one read: a thousand streams, each ended and then sent DATA (so the
    server resets it, STREAM_CLOSED, while its app runs on), in a single 27 KB write. The
    budget runs out at the 21st reset; the streams after it should never reach the app. In
    the harness at full size (50 connections) this grew the server to some 870 MiB."""
    budget = 20
    srv = serve_once(counting_app, h2_max_resets=budget)
    with RawH2(srv.port) as raw:
        frames = []
        for _ in range(1000):
            opened = headers(raw, "/provoked")
            frames += [opened, DataFrame(opened.stream_id, b"late")]
        send_all(raw, *frames)
        assert ended(raw)
    counting_app.release()
    # Reached the app: the streams reset before the budget ran out, and the open ones at most.
    assert len(counting_app.started) <= budget + 100


def test_frames_past_the_budget_are_not_processed(serve_once, monkeypatch):
    """A PING flood in one write of 340 KB (20,000 frames) against a budget of 100: the
    budget ends the connection, but only after h2 has handled (and answered) every PING of
    the read it ran out in (a read of 64 KiB: 3,855 of them, where 101 would do). This is
    the work that stalled the loop for seconds with 50 connections flooding in the harness
    (the control client's p99 during Rapid Reset, PING and SETTINGS floods: about 3 s)."""
    handled = [0]
    receive_ping = h2.connection.H2Connection._receive_ping_frame

    def counting(self, frame):
        handled[0] += 1
        return receive_ping(self, frame)

    monkeypatch.setattr(h2.connection.H2Connection, "_receive_ping_frame", counting)
    srv = serve_once(text_app(), h2_max_control_frames=100)
    with RawH2(srv.port) as raw:
        send_all(raw, *[PingFrame(0, b"12345678")] * 20_000)
        assert ended(raw)
    assert handled[0] <= 2 * 100


def test_a_stream_whose_body_never_comes_is_ended_at_the_body_deadline(serve_once):
    """On HTTP/1.1, --timeout-request-body answers 408 to a body that stops coming. An HTTP/2
    stream that announces a body and sends none should meet the same deadline (a 408 on the
    stream, or RST_STREAM); today it is held for as long as the client keeps the connection."""
    srv = serve_once(text_app(), timeout_request_body=0.5)
    with RawH2(srv.port) as raw:
        stream = raw.headers("/upload", end_stream=False)
        frames = raw.frames(lambda f: f.stream_id == stream and ("END_STREAM" in f.flags or
                                                                 isinstance(f, RstStreamFrame)), timeout=3)
        assert frames and frames[-1].stream_id == stream
