"""WebSockets over HTTP/2 (RFC 8441) at their edges: what a careless or hostile client does
before the 200, after it, and instead of closing; what the app does wrong; the limits, the
send deadlines, shutdown, and that nothing is left behind (active requests, connections, the
connection's ``streams``) once everything has ended.

The client is h2 with wsproto's frames-only connection (tests/h2_helpers.py ``H2WebSocket``),
or raw frames where h2 would refuse to send them. Tests marked xfail(strict) prove a bug
found in review; each says why it fails.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from conftest import Gate, text_app, wait_until
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from h2_helpers import H2Client, H2WebSocket, RawH2
from hyperframe.frame import DataFrame, HeadersFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

disconnects: list[int] = []  # the codes of the websocket.disconnect messages ``echo`` received


async def echo(scope, receive, send):
    """Echoes every message; answers plain requests with "plain"."""
    if scope["type"] == "http":
        await text_app(b"plain")(scope, receive, send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    await _echo_until_disconnect(receive, send)


async def _echo_until_disconnect(receive, send):
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            disconnects.append(message["code"])
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture(autouse=True)
def _fresh():
    disconnects.clear()


# -- helpers ------------------------------------------------------------------------------------


def _whole(events: list[Any]) -> list[Any]:
    """Whole messages from wsproto's events (it hands a message over in parts as DATA frames split it)."""
    messages, partial = [], None
    for event in events:
        if isinstance(event, (TextMessage, BytesMessage)):
            partial = event.data if partial is None else partial + event.data
            if event.message_finished:
                messages.append(partial)
                partial = None
    return messages


def _closes(events: list[Any]) -> list[int]:
    return [event.code for event in events if isinstance(event, CloseConnection)]


def _over(ws: H2WebSocket) -> bool:
    return ws.response.ended or ws.response.reset_code is not None


def _snapshot(srv: Any) -> list[Any]:
    """The server's open connections, and the WebSocket sessions still open on their HTTP/2
    streams, read from the test's thread while the reactor may change them."""
    while True:
        try:
            connections = list(srv.state.connections)
            streams = [s for c in connections for s in list(getattr(c, "streams", {}).values())]
        except RuntimeError:  # changed size during iteration
            continue
        sessions = [s.transport.session for s in streams if s.tunnel and s.transport is not None]
        return connections + [s for s in sessions if s is not None and not s._closed]


def _settled(srv: Any, h2_open: int = 1) -> None:
    """Nothing leaks once every session has ended: no active request, only the HTTP/2
    connections still open (``h2_open``), and no stream left in their ``streams``."""

    def settled() -> bool:
        connections = _snapshot(srv)
        h2 = [c for c in connections if type(c).__name__ == "Http2Connection"]
        return (
            srv.state.active_requests == 0
            and len(connections) == len(h2) == h2_open
            and all(not dict(c.streams) for c in h2)
        )

    try:
        wait_until(settled, timeout=3)
    except AssertionError:
        connections = _snapshot(srv)
        streams = [dict(getattr(c, "streams", {})) for c in connections]
        active = srv.state.active_requests
        raise AssertionError(f"active={active} connections={connections} streams={streams}") from None


def _send_big(client: H2Client, ws: H2WebSocket, event: Any) -> None:
    """A message larger than a frame or the window: queued as the client's upload, which sends
    it frame by frame as the server's WINDOW_UPDATEs come (``H2Client._upload``)."""
    client.uploads[ws.stream_id] = [ws.ws.send(event), False]
    client._upload()
    client.flush()


def _slow_requests(gate: Gate, websocket: Any) -> Any:
    """An app whose requests answer "finished" once ``gate`` opens; WebSockets go to ``websocket``."""

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await gate.wait()
            await text_app(b"finished")(scope, receive, send)
            return
        await websocket(scope, receive, send)

    return app


def _access_lines(caplog: Any) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "treadle.access"]


def _no_close_within(client: H2Client, seconds: float) -> None:
    """Read for ``seconds``; fail if the server closes the connection meanwhile."""
    try:
        client.events_until(lambda: client.closed, timeout=seconds)
    except AssertionError:
        return  # still open at the end
    raise AssertionError("the server closed the connection")


# -- before the 200 ---------------------------------------------------------------------------


def test_frames_sent_before_the_200_are_held_and_delivered_in_order_after_accept(serve_once):
    """A client may send frames optimistically, before the 200 comes: the session holds
    64 KiB, the stream's window holds back the rest (held, not credited), and after accept
    every message arrives, in order."""
    gate = Gate()

    async def app(scope, receive, send):
        await receive()
        await gate.wait()
        await send({"type": "websocket.accept"})
        await _echo_until_disconnect(receive, send)

    srv = serve_once(app, h2_stream_window=1_000_000)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        ws.ws = Connection(ConnectionType.CLIENT)  # frames before the handshake's answer
        for n in range(150):  # 150 kB: past the session's 64 KiB of early bytes
            ws.send(BytesMessage(data=bytes([n]) * 1000))
        try:
            (session,) = wait_until(lambda: [c for c in _snapshot(srv) if type(c).__name__ == "H2WebSocket"])
            wait_until(lambda: session.transport._held)  # reading paused: the rest is held, uncredited
        finally:
            gate.open()
        assert ws.handshake().status == 200
        events = ws.events(lambda events: len(_whole(events)) == 150)
        assert _whole(events) == [bytes([n]) * 1000 for n in range(150)]
        ws.send(CloseConnection(code=1000))
        client.events_until(lambda: _over(ws))
        _settled(srv)


def test_the_client_ending_its_half_before_the_200_gets_no_headless_response(serve_once):
    gate = Gate()
    heard: list[Any] = []

    async def app(scope, receive, send):
        heard.append(await receive())
        await gate.wait()
        try:
            await send({"type": "websocket.accept"})
        except Exception as exc:  # the peer has gone: ClientDisconnected
            heard.append(type(exc).__name__)

    srv = serve_once(app)
    with RawH2(srv.port) as raw:
        raw.frames(lambda frame: isinstance(frame, SettingsFrame) and "ACK" not in frame.flags)
        block = raw.encoder.encode(
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "localhost"),
                ("sec-websocket-version", "13"),
            ]
        )
        raw.send(SettingsFrame(0, flags=["ACK"]), HeadersFrame(1, block, flags=["END_HEADERS"]))
        raw.send(DataFrame(1, b"", flags=["END_STREAM"]))  # the client's half ends, no close frame
        frames = raw.frames(lambda frame: frame.stream_id == 1, timeout=3)
        gate.open()
        # The stream's first frame must be a response's HEADERS, or its reset.
        assert isinstance(frames[-1], (HeadersFrame, RstStreamFrame)), frames[-1]
    wait_until(lambda: heard[-1:] == ["ClientDisconnected"])


def test_handshakes_refused_or_reset_before_accept_leave_nothing_behind(serve_once):
    """A wrong version (400), a path outside --root-path (404), over --limit-concurrency
    (503), and a client resetting the stream while the app has not answered yet."""
    gate = Gate()
    heard: list[Any] = []

    async def app(scope, receive, send):
        heard.append((await receive())["type"])
        await gate.wait()
        heard.append((await receive())["type"])  # the reset: a disconnect, at once

    srv = serve_once(app, root_path="/api", root_path_mode="kept", limit_concurrency=1)
    with H2Client(srv.port) as client:
        try:
            pending = H2WebSocket(client, "/api/")  # takes the one slot of --limit-concurrency
            wait_until(lambda: heard == ["websocket.connect"])
            assert client.response(H2WebSocket(client, "/api/").stream_id).status == 503
            client.conn.reset_stream(pending.stream_id, ErrorCodes.CANCEL)
            client.flush()
        finally:
            gate.open()
        wait_until(lambda: heard == ["websocket.connect", "websocket.disconnect"])
        wrong = client.request(
            "/api/", method="CONNECT", headers=[(":protocol", "websocket"), ("sec-websocket-version", "8")], end=False
        )
        assert client.response(wrong).status == 400
        assert client.response(H2WebSocket(client, "/elsewhere").stream_id).status == 404
        _settled(srv)


def test_the_connection_dropping_ends_every_websocket_on_it(serve_once):
    srv = serve_once(echo)
    client = H2Client(srv.port)
    sockets = [H2WebSocket(client, f"/{n}") for n in range(3)]
    for ws in sockets:
        assert ws.handshake().status == 200
    client.close()  # no close frames, no RST_STREAM, no GOAWAY: the TCP connection just goes
    wait_until(lambda: disconnects == [1006] * 3)
    _settled(srv, h2_open=0)


# -- keepalive ----------------------------------------------------------------------------------


def test_an_unanswered_keepalive_ping_resets_that_stream_and_the_connection_goes_on(serve_once):
    srv = serve_once(echo, ws_ping_interval=0.2, ws_ping_timeout=0.2)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        started = time.monotonic()
        events = ws.events(lambda events: False, timeout=3)  # never answers the ping
        assert any(isinstance(event, Ping) for event in events)
        assert ws.response.reset_code == ErrorCodes.CANCEL
        assert time.monotonic() - started < 2
        wait_until(lambda: disconnects == [1006])
        assert client.response(client.request("/plain")).body == b"plain"
        _settled(srv)


def test_answered_pings_keep_the_websocket_open(serve_once):
    srv = serve_once(echo, ws_ping_interval=0.1, ws_ping_timeout=0.3)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        pings = 0
        until = time.monotonic() + 1.0
        while time.monotonic() < until:  # 1 s: more than three ping timeouts
            for event in ws.events(lambda events: any(isinstance(e, Ping) for e in events), timeout=1):
                if isinstance(event, Ping):
                    pings += 1
                    ws.send(event.response())
        assert pings >= 3 and not _over(ws)
        ws.send(TextMessage(data="still here"))
        assert _whole(ws.events(lambda events: bool(_whole(events)))) == ["still here"]


# -- closing without a close handshake ---------------------------------------------------------


def test_a_compression_bomb_is_closed_1009_and_the_stream_ends(serve_once):
    """50 MB of zeros deflate to ~50 kB: the session inflates in slices and stops at
    --ws-max-size; write_eof is END_STREAM (and RST NO_ERROR for the client's half) here."""
    srv = serve_once(echo, ws_max_size=100_000)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/", deflate=True)
        assert ws.handshake().status == 200
        _send_big(client, ws, BytesMessage(data=b"\0" * 50_000_000))
        events = ws.events(lambda events: bool(_closes(events)), timeout=5)
        assert _closes(events) == [1009]
        client.events_until(lambda: _over(ws))
        assert ws.response.ended  # our half ended cleanly after the close frame
        wait_until(lambda: disconnects == [1009])
        assert client.response(client.request("/plain")).body == b"plain"
        _settled(srv)


def test_the_client_ending_its_half_without_a_close_frame_is_a_1006(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        client.conn.end_stream(ws.stream_id)  # as TCP's FIN with no close frame
        client.flush()
        client.events_until(lambda: _over(ws))
        assert ws.response.ended and ws.response.reset_code is None  # we end our half too
        wait_until(lambda: disconnects == [1006])
        assert client.response(client.request("/plain")).body == b"plain"
        _settled(srv)


# -- the app doing it wrong ---------------------------------------------------------------------


def test_an_app_raising_before_accept_gets_a_500_on_its_stream_only(serve_once):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await text_app(b"plain")(scope, receive, send)
            return
        await receive()
        raise ValueError("before accept")

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert client.response(ws.stream_id).status == 500
        assert client.response(client.request("/plain")).body == b"plain"
        _settled(srv)


@pytest.mark.parametrize("fault, code", [("raises", 1011), ("returns", 1000)])
def test_an_app_leaving_an_open_websocket_closes_it(serve_once, fault, code):
    """After accept, an app that raises closes 1011, one that returns without closing 1000;
    the client's answer ends the stream at once, not after CLOSE_TIMEOUT."""

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        if fault == "raises":
            raise ValueError("after accept")

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        assert _closes(ws.events(lambda events: bool(_closes(events)))) == [code]
        ws.send(CloseConnection(code=code))
        client.events_until(lambda: _over(ws), timeout=2)
        assert ws.response.ended
        _settled(srv)


def test_a_denial_is_never_a_2xx_over_http2(serve_once):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.http.response.start", "status": 200, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"not a websocket"})

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        response = client.response(ws.stream_id)
        assert response.status is not None and not 200 <= response.status < 300, response.status


def test_a_client_resetting_mid_denial_stops_the_apps_body(serve_once):
    gate = Gate()
    outcome: list[Any] = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await text_app(b"plain")(scope, receive, send)
            return
        await receive()
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
        await gate.wait()
        try:
            for _ in range(100):
                await send({"type": "websocket.http.response.body", "body": b"b" * 1000, "more_body": True})
            outcome.append("sent it all")
        except Exception as exc:
            outcome.append(type(exc).__name__)

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        client.events_until(lambda: ws.response.body == b"a")
        assert ws.response.status == 403
        client.conn.reset_stream(ws.stream_id, ErrorCodes.CANCEL)
        client.flush()
        wait_until(lambda: not [c for c in _snapshot(srv) if type(c).__name__ == "H2WebSocket"])
        gate.open()
        wait_until(lambda: outcome)
        assert outcome == ["ClientDisconnected"]
        assert client.response(client.request("/plain")).body == b"plain"
        _settled(srv)


# -- the send deadlines --------------------------------------------------------------------------


async def _flood_or_idle(scope, receive, send):
    """/flood sends 1 MB as fast as it may; anything else is ``echo``'s."""
    if scope["path"] != "/flood":
        await echo(scope, receive, send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    try:
        for _ in range(100):
            await send({"type": "websocket.send", "bytes": b"x" * 10_000})
    except Exception:
        disconnects.append(-1)  # the flood was cut off


def test_a_client_granting_no_window_at_all_is_dropped_after_timeout_send(serve_once):
    srv = serve_once(_flood_or_idle, timeout_send=0.4)
    with H2Client(srv.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}) as client:
        ws = H2WebSocket(client, "/flood")
        assert ws.handshake().status == 200
        started = time.monotonic()
        client.read_until_closed(timeout=3)
        assert 0.3 < time.monotonic() - started < 1.5
        wait_until(lambda: disconnects == [-1])
        _settled(srv, h2_open=0)


def test_a_websocket_whose_window_stays_shut_is_reset_after_timeout_send(serve_once):
    timeout = 0.4
    srv = serve_once(_flood_or_idle, timeout_send=timeout)
    with H2Client(srv.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}) as client:
        flood = H2WebSocket(client, "/flood")
        assert flood.handshake().status == 200
        started = time.monotonic()
        # Halfway, the client takes a response: the connection is live, only the flood's
        # stream is stalled. Only its stream should go, one --timeout-send after it stalled.
        wait_until(lambda: time.monotonic() - started > timeout / 2)
        plain = client.request("/plain")
        client.conn.increment_flow_control_window(100, stream_id=plain)
        client.flush()
        assert client.response(plain).body == b"plain"
        client.events_until(lambda: flood.response.reset_code is not None, timeout=3 * timeout)
        assert flood.response.reset_code == ErrorCodes.CANCEL
        assert time.monotonic() - started < 1.5 * timeout
        wait_until(lambda: disconnects == [-1])


def test_a_blocked_websocket_reset_by_its_keepalive_leaves_no_send_deadline_behind(serve_once):
    """A WebSocket's bytes wait on a shut window; its keepalive gives up and resets it. Nothing
    waits for the client any more: the connection, carrying a slow request, must stay."""
    timeout = 0.4
    gate = Gate()

    async def websocket(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"x" * 30_000})  # under the high-water mark
        await _echo_until_disconnect(receive, send)

    srv = serve_once(_slow_requests(gate, websocket), timeout_send=timeout, ws_ping_interval=0.1, ws_ping_timeout=0.1)
    with H2Client(srv.port, settings={SettingCodes.INITIAL_WINDOW_SIZE: 0}) as client:
        slow = client.request("/slow")
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        client.events_until(lambda: ws.response.reset_code is not None)  # the pong never came
        assert ws.response.reset_code == ErrorCodes.CANCEL
        try:
            _no_close_within(client, 3 * timeout)
        finally:
            gate.open()  # the app's request ends, whatever happened
        client.conn.increment_flow_control_window(100, stream_id=slow)
        client.flush()
        assert client.response(slow).body == b"finished"


def test_a_client_that_reads_nothing_is_dropped_one_timeout_send_after_its_socket_fills(serve_once):
    timeout = 0.5
    ended: list[float] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        finally:
            ended.append(time.monotonic())

    srv = serve_once(app, h2_stream_window=2**20, timeout_send=timeout)
    with RawH2(srv.port) as raw:  # reads nothing after this: the socket fills
        raw.send(
            SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}),
            WindowUpdateFrame(0, window_increment=2**31 - 1 - 65535),
        )
        raw.headers("/")
        (connection,) = wait_until(lambda: _snapshot(srv))
        wait_until(lambda: not connection.transport.is_reading(), interval=0.001)  # writing paused
        paused = time.monotonic()
        wait_until(lambda: ended, timeout=3 * timeout)
        assert ended[0] - paused < 1.6 * timeout


# -- limits -------------------------------------------------------------------------------------


def test_websockets_at_the_stream_limit_free_their_slots_when_closed(serve_once):
    srv = serve_once(echo, h2_max_concurrent_streams=3)
    with H2Client(srv.port) as client:
        sockets = [H2WebSocket(client, f"/{n}") for n in range(3)]
        for ws in sockets:
            assert ws.handshake().status == 200
        for ws in sockets:  # h2 on the client side opens no fourth stream until one is closed
            ws.send(CloseConnection(code=1000))
            client.events_until(lambda ws=ws: _over(ws))
            again = H2WebSocket(client, "/again")
            assert again.handshake().status == 200  # not REFUSED_STREAM: the server freed it
            again.send(TextMessage(data="hi"))
            assert _whole(again.events(lambda events: bool(_whole(events)))) == ["hi"]
            again.send(CloseConnection(code=1000))
            client.events_until(lambda again=again: _over(again))
        _settled(srv)


def test_limit_concurrency_counts_websockets_and_frees_them(serve_once):
    srv = serve_once(echo, limit_concurrency=1)
    with H2Client(srv.port) as client:
        first = H2WebSocket(client, "/")
        assert first.handshake().status == 200
        second = H2WebSocket(client, "/")
        assert client.response(second.stream_id).status == 503
        first.send(CloseConnection(code=1000))
        client.events_until(lambda: _over(first))
        wait_until(lambda: srv.state.active_requests == 0)
        third = H2WebSocket(client, "/")
        assert third.handshake().status == 200
        third.send(CloseConnection(code=1000))
        client.events_until(lambda: _over(third))
        _settled(srv)


# -- what the 200 and the logs say ---------------------------------------------------------------


def test_root_path_kept_request_id_echoed_and_the_access_log_says_connect_over_2(serve_once, caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    scopes: list[dict] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await echo(scope, receive, send)

    srv = serve_once(
        app,
        root_path="/api",
        root_path_mode="kept",
        request_id_header="X-Request-ID",
        access_log_format="{method} {protocol} {status} {request_id} {path}",
    )
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/api/chat", headers=[("x-request-id", "from-the-client")])
        response = ws.handshake()
        assert response.status == 200
        assert response.header(b"x-request-id") == b"from-the-client"
        outside = H2WebSocket(client, "/elsewhere")
        assert client.response(outside.stream_id).status == 404
        ws.send(CloseConnection(code=1000))
        client.events_until(lambda: _over(ws))
        _settled(srv)
    (scope,) = scopes
    assert (scope["root_path"], scope["path"]) == ("/api", "/api/chat")
    assert scope["state"]["request_id"] == "from-the-client"
    lines = _access_lines(caplog)
    assert "CONNECT HTTP/2 200 from-the-client /api/chat" in lines
    assert any(line.startswith("CONNECT HTTP/2 404") for line in lines)


def test_websockets_on_one_connection_count_as_one_open_connection(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        sockets = [H2WebSocket(client, f"/{n}") for n in range(3)]
        for ws in sockets:
            assert ws.handshake().status == 200
        snapshot = srv.state.stats.snapshot(srv.state)
        assert snapshot["requests_in_flight"] == 3
        assert snapshot["connections_open"] == 1


def test_a_websocket_refused_by_limit_concurrency_is_logged_and_counted(serve_once, caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    srv = serve_once(echo, limit_concurrency=1, access_log_format="{method} {protocol} {status} {path}")
    with H2Client(srv.port) as client:
        first = H2WebSocket(client, "/first")
        assert first.handshake().status == 200
        responses = srv.state.stats.responses
        second = H2WebSocket(client, "/second")
        assert client.response(second.stream_id).status == 503
        wait_until(lambda: "CONNECT HTTP/2 200 /first" in _access_lines(caplog))
        assert "CONNECT HTTP/2 503 /second" in _access_lines(caplog)
        assert srv.state.stats.responses == responses + 1


# -- shutdown -----------------------------------------------------------------------------------


def test_graceful_shutdown_closes_websockets_1012_and_finishes_requests(serve_once):
    gate = Gate()
    srv = serve_once(_slow_requests(gate, echo), timeout_graceful_shutdown=5)
    with H2Client(srv.port) as client:
        sockets = [H2WebSocket(client, f"/{n}") for n in range(2)]
        for ws in sockets:
            assert ws.handshake().status == 200
        slow = client.request("/slow")
        wait_until(lambda: srv.state.active_requests == 3)
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        try:
            try:
                for ws in sockets:
                    assert _closes(ws.events(lambda events: bool(_closes(events)))) == [1012]
                    ws.send(CloseConnection(code=1012))
                    client.events_until(lambda ws=ws: _over(ws))
                assert not client.closed  # the request is still running
            finally:
                gate.open()
            assert client.response(slow).body == b"finished"
            client.read_until_closed(timeout=5)
        finally:
            stopper.join(10)
        assert not stopper.is_alive()
    assert sorted(disconnects) == [1012, 1012]
    assert srv.state.active_requests == 0 and not _snapshot(srv)
