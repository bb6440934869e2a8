"""HTTP/2 under attack: each limit and budget of docs/http2.md, met as documented, while a
client on another connection is served throughout.

The attackers are raw frame writers (tests/h2_helpers.py ``RawH2``) or h2 in the client role.
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

from treadle.server.http2.engine import Engine


def _goaway(frame) -> bool:
    return isinstance(frame, GoAwayFrame)


def _served(srv) -> None:
    """The control client: a fresh connection gets its answer."""
    with H2Client(srv.port) as client:
        assert client.response(client.request("/control")).status == 200


@pytest.fixture
def waiting_app():
    """Requests wait until released; ``release()`` lets them all answer."""
    gate = Gate()
    seen: list[str] = []

    async def app(scope, receive, send):
        seen.append(scope["path"])
        if scope["path"] != "/control":
            await gate.wait()
        await text_app(b"ok")(scope, receive, send)

    app.seen = seen
    app.release = gate.open
    return app


def test_the_engine_still_overrides_h2s_header_block_handler():
    """Engine refuses one stream too many by overriding h2's internal handler of a whole
    header block: an h2 release that renamed it would silently bring back the connection error."""
    assert "_receive_headers_frame" in vars(h2.connection.H2Connection)
    assert "_receive_headers_frame" in vars(Engine)


def test_a_stream_over_the_limit_is_refused_alone(serve_once, waiting_app):
    srv = serve_once(waiting_app, h2_max_concurrent_streams=3)
    with RawH2(srv.port) as raw:
        streams = [raw.headers(f"/{i}") for i in range(4)]
        frames = raw.frames(lambda f: isinstance(f, RstStreamFrame))
        assert frames[-1].stream_id == streams[3] and frames[-1].error_code == ErrorCodes.REFUSED_STREAM
        wait_until(lambda: len(waiting_app.seen) == 3)
        waiting_app.release()
        done = set()

        def answered(frame) -> bool:
            if "END_STREAM" in frame.flags:
                done.add(frame.stream_id)
            return done >= set(streams[:3])

        frames = raw.frames(answered)
        assert not any(_goaway(f) for f in frames)  # the connection lives on
        assert raw.headers("/after") > 0  # and takes new streams
        raw.frames(lambda f: "END_STREAM" in f.flags and f.stream_id == streams[3] + 2)


def test_rapid_reset_ends_the_connection_with_enhance_your_calm(serve_once, waiting_app):
    srv = serve_once(waiting_app, h2_max_resets=50)
    try:
        with RawH2(srv.port) as raw:
            for _ in range(60):
                try:
                    stream = raw.headers("/reset")
                    raw.send(RstStreamFrame(stream, error_code=ErrorCodes.CANCEL))
                except OSError:
                    break  # the server has had enough, and closed before we finished
            frames = raw.frames(_goaway)
            assert frames[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM
            assert raw.frames(lambda f: False) is not None  # then it closes
        _served(srv)
    finally:
        waiting_app.release()


def test_provoked_resets_count_too(serve_once, waiting_app):
    """MadeYouReset: a frame that breaks a stream's rules (DATA after the client ended the
    stream: RFC 9113 6.1, a stream error) makes the server reset the stream while its app runs
    on; those resets are charged to the same budget."""
    srv = serve_once(waiting_app, h2_max_resets=20)
    try:
        with RawH2(srv.port) as raw:
            for _ in range(30):
                try:
                    stream = raw.headers("/provoke")  # with END_STREAM
                    raw.send(DataFrame(stream, b"late"))
                except OSError:
                    break  # the server has had enough, and closed before we finished
            frames = raw.frames(_goaway)
            assert frames[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM
            resets = [f for f in frames if isinstance(f, RstStreamFrame)]
            assert resets  # the server did reset those streams, before it had enough
        _served(srv)
    finally:
        waiting_app.release()


@pytest.mark.parametrize("frame", [PingFrame(0, b"12345678"), SettingsFrame(0)], ids=["ping", "settings"])
def test_a_control_frame_flood_ends_the_connection(serve_once, frame):
    srv = serve_once(text_app(), h2_max_control_frames=100)
    with RawH2(srv.port) as raw:
        raw.send(*[frame] * 150)
        frames = raw.frames(_goaway)
        assert frames[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM
    _served(srv)


def test_a_continuation_flood_is_bounded_by_the_head_limit(serve_once):
    """CVE-2024-27316: a header block that never ends. It is cut off at --limit-request-head-size
    bytes, however it is split into frames."""
    srv = serve_once(text_app(), limit_request_head_size=4096)
    with RawH2(srv.port) as raw:
        first = HeadersFrame(1, raw.header_block())
        raw.send(first)
        raw.send(*[ContinuationFrame(1, b"\x00" * 1000) for _ in range(10)])
        frames = raw.frames(_goaway)
        assert frames[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM
    _served(srv)


def test_an_idle_connection_is_closed_politely(serve_once):
    srv = serve_once(text_app(), timeout_keep_alive=0.3)
    with RawH2(srv.port) as raw:
        frames = raw.frames(_goaway, timeout=5)
        assert frames[-1].error_code == ErrorCodes.NO_ERROR
        assert raw.frames(lambda f: False) is not None  # closed


def test_after_max_requests_a_graceful_goaway_in_two_steps(serve_once, waiting_app):
    """RFC 9113 6.8: GOAWAY with the highest stream id and a PING; once the PING is answered,
    GOAWAY with the real last stream id; a stream above it is refused; the streams up to it
    are answered; then the connection closes."""
    srv = serve_once(waiting_app, h2_max_requests=3)
    with RawH2(srv.port) as raw:
        streams = [raw.headers(f"/{i}") for i in range(3)]
        frames = raw.frames(lambda f: isinstance(f, PingFrame) and "ACK" not in f.flags)
        first = [f for f in frames if _goaway(f)]
        assert len(first) == 1 and first[0].last_stream_id == 2**31 - 1 and first[0].error_code == 0
        late = raw.headers("/late")  # in flight when the first GOAWAY went: still served
        wait_until(lambda: "/late" in waiting_app.seen)
        answer = PingFrame(0, frames[-1].opaque_data)
        answer.flags.add("ACK")
        raw.send(answer)
        frames = raw.frames(lambda f: _goaway(f))
        assert frames[-1].last_stream_id == late and frames[-1].error_code == 0
        refused = raw.headers("/refused")
        frames = raw.frames(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == refused)
        assert frames[-1].error_code == ErrorCodes.REFUSED_STREAM
        waiting_app.release()
        frames = raw.frames(lambda f: False)  # the server closes once its streams are done
        assert {f.stream_id for f in frames if "END_STREAM" in f.flags} == {*streams, late}
    assert "/refused" not in waiting_app.seen


def test_a_client_that_does_not_read_stops_being_read(serve_once):
    """While what we send piles up unread, nothing more is read from the client: its PINGs
    (which we must answer) cannot grow our buffer."""
    chunk = b"x" * 65536

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    srv = serve_once(app, h2_stream_window=2**20, timeout_graceful_shutdown=0.5)
    with RawH2(srv.port) as raw:
        raw.send(
            SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}),
            WindowUpdateFrame(0, window_increment=2**31 - 1 - 65535),
        )
        raw.headers("/")
        connection = wait_until(lambda: next(iter(srv.state.connections), None))
        wait_until(lambda: not connection.transport.is_reading(), timeout=10)
        raw.send(*[PingFrame(0, b"abcdefgh")] * 50)
        buffered = connection.transport.get_write_buffer_size()
        assert buffered < 4 * 1024 * 1024
        assert not connection.transport.is_reading()


def _streaming_app(size: int, done: threading.Event):
    """Answers ``size`` bytes in 16 KiB sends; ``done`` is set when the app ends, however."""

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(size // 16384):
                await send({"type": "http.response.body", "body": b"x" * 16384, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            done.set()

    return app


def test_a_client_that_grants_no_window_is_dropped_at_the_send_deadline(serve_once):
    """RFC 9113 6.9 lets a receiver hold a window at zero as long as it likes; the server does
    not hold the stream, its app and its buffers as long: a client that takes nothing for
    --timeout-send is dropped, and its PINGs (answered, and read) do not count as taking."""
    done = threading.Event()
    srv = serve_once(_streaming_app(1024 * 1024, done), timeout_send=1)
    with RawH2(srv.port) as raw:
        raw.send(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}))
        started = time.monotonic()
        raw.headers("/")
        seen = []
        while not raw.closed and time.monotonic() - started < 5:
            try:
                raw.send(PingFrame(0, b"stillhre"))
            except OSError:
                break  # dropped
            seen += raw.frames(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags, timeout=5)
            time.sleep(0.2)  # a client pinging five times a second, reading every answer
        elapsed = time.monotonic() - started
    assert raw.closed, "the stalled client was never dropped"
    assert 1 <= elapsed < 6, elapsed
    assert any(isinstance(f, HeadersFrame) for f in seen)
    assert not any(isinstance(f, DataFrame) and f.data for f in seen)
    assert done.wait(5), "the app was not told its client is gone"
    _served(srv)


def test_a_client_granting_window_slowly_is_served_to_the_end(serve_once):
    """The deadline is an idle clock: a client that takes a little every half second, with
    --timeout-send 2 and for longer than that in all, gets its whole response."""
    done = threading.Event()
    size = 96 * 1024
    srv = serve_once(_streaming_app(size, done), timeout_send=2)
    with RawH2(srv.port) as raw:
        raw.send(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}))
        stream = raw.headers("/")
        received = 0
        deadline = time.monotonic() + 10
        while received < size and time.monotonic() < deadline:
            raw.send(WindowUpdateFrame(stream, window_increment=16384), WindowUpdateFrame(0, window_increment=16384))
            frames = raw.frames(lambda f: isinstance(f, DataFrame) and f.data, timeout=5)
            received += sum(len(f.data) for f in frames if isinstance(f, DataFrame))
            time.sleep(0.5)
        raw.send(WindowUpdateFrame(stream, window_increment=16384))
        end = raw.frames(lambda f: "END_STREAM" in f.flags, timeout=5)
        received += sum(len(f.data) for f in end if isinstance(f, DataFrame))
    assert received == size
    assert done.wait(5)


def _body_reader(outcome: list):
    """Reads the whole body, then answers how much came; records ``http.disconnect``."""

    async def app(scope, receive, send):
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                outcome.append("disconnect")
                return
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % size})

    return app


def test_a_body_that_stops_coming_is_408_on_its_stream_alone(serve_once):
    """--timeout-request-body, as on HTTP/1.1: a stream whose body stops coming is answered 408
    (its app told the client is gone); other streams, and the connection, go on."""
    outcome: list = []
    srv = serve_once(_body_reader(outcome), timeout_request_body=0.5)
    with H2Client(srv.port) as client:
        stalled = client.request("/upload", method="POST", body=b"first part", end=False)
        assert client.response(stalled, timeout=5).status == 408
        wait_until(lambda: outcome == ["disconnect"])
        assert client.response(client.request("/next", method="POST", body=b"abc")).body == b"3"


def test_a_slow_but_steady_body_is_not_cut(serve_once):
    """The deadline is an idle clock: a body sent a piece every 0.3 s, for longer than the 1 s
    deadline in all, arrives whole."""
    outcome: list = []
    srv = serve_once(_body_reader(outcome), timeout_request_body=1.0)
    with H2Client(srv.port) as client:
        stream = client.request("/upload", method="POST", body=b"x", end=False)
        for _ in range(5):
            time.sleep(0.3)  # a slow client: a piece every 0.3 s
            client.conn.send_data(stream, b"x")
            client.flush()
        client.conn.end_stream(stream)
        client.flush()
        assert client.response(stream).body == b"6"
    assert outcome == []


def test_a_body_held_back_by_a_slow_app_is_not_the_clients_delay(serve_once):
    """While the app leaves the body unread, the client has no window to send more: that is no
    reason for a 408, however long the app takes."""
    gate = Gate()

    async def app(scope, receive, send):
        await gate.wait()  # reads nothing for a while
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % size})

    srv = serve_once(app, timeout_request_body=0.3, h2_stream_window=65535)
    with H2Client(srv.port) as client:
        body = b"y" * 200_000  # three windows' worth: the client stalls on flow control
        stream = client.request("/upload", method="POST", body=body)
        wait_until(lambda: client.events_until(lambda: True) or client.conn.local_flow_control_window(stream) == 0)
        time.sleep(1.0)  # three deadlines' worth of the app not reading
        gate.open()
        assert client.response(stream, timeout=10).body == b"200000"


def test_streams_reset_while_their_apps_run_still_count_against_the_limit(serve_once, waiting_app):
    """MadeYouReset's other half: each provoked reset frees a stream slot on the wire while its
    app runs on. Those apps count against --h2-max-concurrent-streams: past it, new streams are
    refused (REFUSED_STREAM), so one connection never has more apps running than it may have
    streams open."""
    srv = serve_once(waiting_app, h2_max_concurrent_streams=10, h2_max_resets=1000)
    with RawH2(srv.port) as raw:
        for _ in range(30):
            stream = raw.headers("/provoke")  # with END_STREAM, then DATA: h2 resets it
            raw.send(DataFrame(stream, b"late"))
        raw.frames(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == stream)  # the last one's end
        # (Each is reset on the wire already, by h2, for its DATA: so not refused, but never started.)
        assert len(waiting_app.seen) == 10
        # Once the apps are done, the slots are free again.
        waiting_app.release()
        wait_until(lambda: srv.state.active_requests == 0)
        raw.headers("/after")
        raw.frames(lambda f: isinstance(f, HeadersFrame) and f.stream_id == stream + 2)
        assert waiting_app.seen[-1] == "/after"
    waiting_app.release()


def test_the_frame_guard_cuts_a_read_of_many_frames_into_slices_for_h2():
    """A read of many small frames goes to h2 in slices of SLICE_FRAMES frames, cut at frame
    boundaries (so a budget spent by what h2 alone sees stops it within a slice); a read of a
    few large frames is not cut."""
    from treadle.server.http2.frames import PREFACE, SLICE_FRAMES, FrameGuard

    guard = FrameGuard(16384, lambda: True, lambda: True)
    ack = PingFrame(0, b"12345678")
    ack.flags.add("ACK")
    one = ack.serialize()
    data = PREFACE + one * (2 * SLICE_FRAMES + 5)
    cuts = guard.scan(data)
    assert cuts == [len(PREFACE) + len(one) * SLICE_FRAMES * n for n in (1, 2)]
    large = DataFrame(1, b"x" * 16000).serialize() * 4
    assert guard.scan(large) is None
