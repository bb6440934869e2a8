"""WebSocket limits and bad peers: message size, keepalive, malformed handshakes, protocol
violations, and flow control in both directions."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from conftest import wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from ws_helpers import Events, RawPeer, echo_app, handshake_request, ws_url
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate

from treadle.reactor.transports import MAX_RECV
from treadle.server.http1.websocket import WSProtocol
from treadle.server.ws_session import MAX_QUEUED_BYTES


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame built by hand (wsproto would refuse to build broken ones)."""
    mask = b"\x11\x22\x33\x44"
    return bytes([first_byte, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def wait_stalled(read, settle: float = 0.3, timeout: float = 10.0):
    """Wait until ``read()`` stops changing for ``settle`` seconds; return its value."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError("still moving at the deadline")


def only_connection(srv):
    return wait_until(lambda: len(srv.state.connections) == 1 and next(iter(srv.state.connections)))


# -- message size ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [b"x" * 1001, ["x" * 500, "x" * 501], "€" * 334, ["€" * 250, "€" * 187]],
    ids=["bytes", "fragments", "utf8-bytes", "utf8-fragments"],  # 1002 and 1311 bytes of text
)
def test_message_over_max_size_closes_1009(serve, message):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            event = await receive()
            seen.add(event)
            if event["type"] == "websocket.disconnect":
                return

    srv = serve(app, ws_max_size=1000)
    with connect(ws_url(srv), compression=None) as ws:
        ws.send(b"y" * 1000)  # exactly the limit is fine
        with pytest.raises(ConnectionClosed) as info:
            # The close may come while the client still sends the message's last fragments.
            ws.send(message)
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1009
    wait_until(lambda: len(seen()) == 2)
    assert seen()[0] == {"type": "websocket.receive", "bytes": b"y" * 1000}
    assert seen()[1]["code"] == 1009


def test_max_size_counts_decompressed_bytes(serve):
    srv = serve(echo_app, ws_max_size=10_000)
    with connect(ws_url(srv)) as ws:  # permessage-deflate: 20 KB of zeros is a tiny frame
        ws.send(b"\0" * 20_000)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1009


def test_compression_bomb_is_stopped_before_it_inflates(serve, monkeypatch):
    # Two measures of one property. The bytes wsproto had inflated when the server decided on
    # 1009: counted on every interpreter. The peak of memory allocated meanwhile: tracemalloc
    # exists on CPython only (PyPy has no _tracemalloc, and its moving GC frees garbage lazily).
    inflated = [0]
    at_close = []
    inflate = PerMessageDeflate.frame_inbound_payload_data
    server_close = WSProtocol._server_close

    def counting_inflate(self, proto, data):
        result = inflate(self, proto, data)
        if isinstance(result, bytes):
            inflated[0] += len(result)
        return result

    def recording_close(self, code, reason):
        at_close.append(inflated[0])
        server_close(self, code, reason)

    monkeypatch.setattr(PerMessageDeflate, "frame_inbound_payload_data", counting_inflate)
    monkeypatch.setattr(WSProtocol, "_server_close", recording_close)
    try:
        import tracemalloc
    except ImportError:
        tracemalloc = None
    srv = serve(echo_app, ws_max_size=1024 * 1024)
    bomb = b"\0" * (64 * 1024 * 1024)  # deflates to ~64 KB
    peak = None
    with connect(ws_url(srv), max_size=None) as ws:
        if tracemalloc is not None:
            tracemalloc.start()  # traces the reactor thread too
        try:
            if tracemalloc is not None:
                tracemalloc.reset_peak()
            ws.send(bomb)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10)
            if tracemalloc is not None:
                peak = tracemalloc.get_traced_memory()[1]
        finally:
            if tracemalloc is not None:
                tracemalloc.stop()
    assert info.value.rcvd.code == 1009
    # The limit plus one slice's worth of inflation, not 64 MiB.
    assert at_close and at_close[0] < 24 * 1024 * 1024
    if peak is not None:
        assert peak < 24 * 1024 * 1024


# -- keepalive ----------------------------------------------------------------------------------


def test_peer_that_stops_answering_pings_is_dropped(serve):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        seen.add(await receive())

    srv = serve(app, ws_ping_interval=0.1, ws_ping_timeout=0.2)
    with RawPeer(srv.port) as peer:
        peer.handshake()
        assert isinstance(peer.next_event(), Ping)  # ...and never answered
        started = time.monotonic()
        event = peer.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1011
        assert peer.closed_by_server()
        assert time.monotonic() - started < 2.0
    wait_until(seen)
    assert seen()[0]["type"] == "websocket.disconnect"
    wait_until(lambda: not srv.state.connections)


def test_peer_that_answers_pings_stays(serve):
    srv = serve(echo_app, ws_ping_interval=0.05, ws_ping_timeout=0.1)
    with RawPeer(srv.port) as peer:
        peer.handshake()
        for _ in range(5):  # five rounds, each longer than the timeout
            ping = peer.next_event()
            assert isinstance(ping, Ping)
            peer.send(ping.response())
        peer.send(TextMessage(data="alive"))
        event = peer.next_event()
        while isinstance(event, Ping):
            peer.send(event.response())
            event = peer.next_event()
        assert isinstance(event, TextMessage) and event.data == "alive"


# -- bad handshakes and frames --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, status",
    [
        ([("Sec-WebSocket-Key", None)], 400),
        ([("Sec-WebSocket-Version", None)], 400),
        ([("Sec-WebSocket-Version", "8")], 426),  # RFC 6455 4.4: say which version we speak
    ],
    ids=["no-key", "no-version", "wrong-version"],
)
def test_malformed_handshake(serve, headers, status):
    srv = serve(echo_app)
    with srv.connect() as c:
        c.send(handshake_request(headers=headers))
        response = c.read_response()
        assert response.status == status
        assert c.is_closed()
    if status == 426:
        assert response.header(b"sec-websocket-version") == b"13"
    with connect(ws_url(srv)) as ws:  # the server keeps serving
        ws.send("ok")
        assert ws.recv(timeout=5) == "ok"


def test_upgrade_with_another_method_is_400(serve):
    srv = serve(echo_app)
    with srv.connect() as c:
        c.send(handshake_request().replace(b"GET ", b"POST ", 1))
        assert c.read_response().status == 400


@pytest.mark.parametrize(
    "frame, code",
    [
        (masked_frame(0x83, b"x"), 1002),  # reserved opcode
        (masked_frame(0x81, b"\xff\xfe"), 1007),  # text that is not UTF-8
        (bytes([0x81, 0x02]) + b"hi", 1002),  # a client frame without a mask
    ],
    ids=["opcode", "utf8", "unmasked"],
)
def test_protocol_violation_closes_with_the_right_code(serve, frame, code):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        seen.add(await receive())

    srv = serve(app)
    with RawPeer(srv.port) as peer:
        peer.handshake()
        peer.sock.sendall(frame)
        event = peer.next_event()
        assert isinstance(event, CloseConnection) and event.code == code
        assert peer.closed_by_server()
    wait_until(seen)
    assert seen()[0]["type"] == "websocket.disconnect" and seen()[0]["code"] == code


# -- flow control -----------------------------------------------------------------------------


def test_slow_client_makes_send_wait(serve):
    count, size = 200, 64 * 1024  # 12.5 MiB: far more than any buffer on the way
    sent = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        for i in range(count):
            await send({"type": "websocket.send", "bytes": bytes([i % 256]) * size})
            sent.add(i)

    srv = serve(app, ws_per_message_deflate=False)
    with RawPeer(srv.port, rcvbuf=64 * 1024) as peer:
        peer.handshake()
        stalled_at = wait_stalled(lambda: len(sent()))
        assert stalled_at < count  # the app is parked in send()
        buffered = only_connection(srv).transport.get_write_buffer_size()
        assert buffered <= 64 * 1024 + size + 16  # high-water mark plus the message that crossed it
        for i in range(count):
            assert peer.next_message() == bytes([i % 256]) * size
    assert len(sent()) == count


def test_flood_is_bounded_while_the_app_does_not_receive(serve):
    count, size = 5000, 1024
    release = threading.Event()
    received = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while not release.is_set():
            await asyncio.sleep(0.005)
        for _ in range(count):
            received.add((await receive())["bytes"])

    srv = serve(app, ws_per_message_deflate=False)
    messages = [i.to_bytes(4, "big") + os.urandom(size - 4) for i in range(count)]
    with RawPeer(srv.port, timeout=20) as peer:
        peer.handshake()
        progress = [0]

        def flood() -> None:
            for message in messages:
                peer.send(BytesMessage(data=message))
                progress[0] += 1

        sender = threading.Thread(target=flood)
        sender.start()
        try:
            stalled_at = wait_stalled(lambda: progress[0])
            assert stalled_at < count  # the server stopped reading
            cycle = only_connection(srv).cycle
            assert cycle.queued_bytes <= MAX_QUEUED_BYTES + MAX_RECV
        finally:
            release.set()
            sender.join(20)
        assert not sender.is_alive()
        wait_until(lambda: len(received()) == count, timeout=20)
    assert received() == messages


def test_frames_sent_with_the_handshake_wait_for_accept(serve):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await asyncio.sleep(0.05)  # accept late: the frame is already in the server's hands
        await send({"type": "websocket.accept"})
        seen.add(await receive())

    srv = serve(app)
    with srv.connect() as c:
        c.send(handshake_request() + masked_frame(0x81, b"early bird"))
        assert c.read_head()[0] == 101
    wait_until(seen)
    assert seen()[0] == {"type": "websocket.receive", "text": "early bird"}
