"""Hostile WebSocket peers (docs/reliability.md): compression bombs, tiny fragments, ping floods.

Each defence is measured where it matters: the bytes inflated after the server decided on
1009, the memory a message in one-byte fragments costs, the pongs and the buffer a peer
that pings and never reads gets, and the latency of another client meanwhile.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import wait_until
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from ws_helpers import Events, RawPeer, echo_app, ws_url
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate

from treadle.server.ws_session import CLOSE_TIMEOUT

try:
    import tracemalloc
except ImportError:  # PyPy has no _tracemalloc
    tracemalloc = None


def test_nothing_is_inflated_once_the_server_has_decided_on_1009(serve, monkeypatch):
    inflated = [0]
    inflate = PerMessageDeflate.frame_inbound_payload_data

    def counting_inflate(self, proto, data):
        result = inflate(self, proto, data)
        if isinstance(result, bytes):
            inflated[0] += len(result)
        return result

    monkeypatch.setattr(PerMessageDeflate, "frame_inbound_payload_data", counting_inflate)
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        seen.add((message, inflated[0]))  # what had been inflated when the app was told

    srv = serve(app, ws_max_size=1024 * 1024)
    bomb = b"\0" * (64 * 1024 * 1024)  # ~64 KB on the wire: one read or a few
    started = time.monotonic()
    with connect(ws_url(srv), max_size=None) as ws:
        ws.send(bomb)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd.code == 1009
    # The close handshake is not waited for: the server half-closed after its close frame.
    assert time.monotonic() - started < CLOSE_TIMEOUT
    wait_until(seen)
    message, at_close = seen()[0]
    assert message["type"] == "websocket.disconnect" and message["code"] == 1009
    wait_until(lambda: not srv.state.connections)
    assert at_close <= 1024 * 1024 + 4 * 1024 * 1024  # the limit plus one 4 KiB slice's worth
    assert inflated[0] == at_close  # and not a byte after


def test_a_peer_that_keeps_sending_after_1009_is_read_but_not_parsed(serve):
    srv = serve(echo_app, ws_max_size=1000, ws_per_message_deflate=False)
    with RawPeer(srv.port) as peer:
        peer.handshake()
        peer.send(BytesMessage(data=b"x" * 1001))
        event = peer.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1009
        # Garbage now would be a protocol error if it were parsed; it is dropped unread.
        peer.sock.sendall(b"\xff" * 100_000)
        assert peer.closed_by_server()  # our FIN, then EOF: no reset over the close frame
    wait_until(lambda: not srv.state.connections)


@pytest.mark.parametrize("kind", ["bytes", "text"])
def test_a_message_in_one_byte_fragments_costs_its_size_not_an_object_per_fragment(serve, kind):
    count = 20_000
    got = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        got.add(message.get("bytes") if kind == "bytes" else message.get("text"))
        await receive()

    srv = serve(app, ws_per_message_deflate=False, ws_max_size=3 * count)
    with RawPeer(srv.port, timeout=30) as peer:
        peer.handshake()
        piece = b"f" if kind == "bytes" else "€"  # not Latin-1: each fragment a new str object
        message = BytesMessage if kind == "bytes" else TextMessage
        frames = b"".join(peer.conn.send(message(data=piece, message_finished=False)) for _ in range(count - 1))
        frames += peer.conn.send(message(data=piece, message_finished=True))
        if tracemalloc is not None:
            tracemalloc.start()
        try:
            peer.sock.sendall(frames)
            wait_until(got, timeout=30)
            peak = tracemalloc.get_traced_memory()[1] if tracemalloc is not None else None
        finally:
            if tracemalloc is not None:
                tracemalloc.stop()
    assert got()[0] == piece * count
    if peak is not None:
        # 20 KB (or 60 KB of text) of message: held as 20,000 objects it costs 2 MB or so.
        assert peak < 1024 * 1024, peak


def _reading_facts(session: Any) -> dict:
    """Why a session might not be reading, as far as its and its transport's state tell (read
    from the test's thread: a snapshot for a failure message, not a synchronised view)."""
    transport = session.transport
    loop = transport._loop
    try:
        key = loop._selector.get_key(transport._fd)
        registered = (key.events, key.data)
    except (KeyError, ValueError) as exc:
        registered = repr(exc)
    facts = {name: getattr(session, name, None) for name in (
        "_turn_due", "_read_paused", "_write_paused", "_closed", "_failed", "_accepted", "_timer_kind")}
    facts.update(
        waiting=len(session._waiting), ws_state=session.conn.state, transport=repr(transport),
        reading=transport._reading, registered_flag=transport._reading_registered,
        closing=transport._closing, conn_lost=transport._conn_lost,
        owner=loop._transports.get(transport._fd) is transport,
        selector=registered,
    )
    return facts


def test_a_ping_flood_costs_a_pong_per_read_and_others_are_served_meanwhile(serve):
    srv = serve(echo_app, ws_ping_interval=0)
    count = 50_000  # 6.5 MB of the largest pings: as many pongs would pass the kernel's buffers
    flooded = threading.Event()
    # The flooder reads nothing, but keeps the kernel's default receive buffer: with SO_RCVBUF
    # at 4 KiB, loopback's 64 KiB segments of pongs could not be queued, and both kernels fell
    # into retransmission backoff (RTO 13 s, cwnd 1, in `ss -ti` of a failed run) while the
    # server had read every byte sent: a TCP stall of the client's making, not the server's.
    with RawPeer(srv.port, timeout=20) as peer:
        peer.handshake()
        conn = wait_until(lambda: next(iter(srv.state.connections), None))
        batch = peer.conn.send(Ping(payload=b"p" * 125)) * 100

        failed: list[BaseException] = []

        def flood() -> None:
            try:
                for _ in range(count // 100):  # reading none of the answers meanwhile
                    peer.sock.sendall(batch)
            except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
                failed.append(exc)
            finally:
                flooded.set()  # (never a wait on a flood that can no longer end)

        flooder = threading.Thread(target=flood)
        flooder.start()
        try:
            with connect(ws_url(srv)) as ws:  # another client, served while the flood lasts
                while not flooded.is_set():
                    started = time.monotonic()
                    ws.send("alive")
                    assert ws.recv(timeout=5) == "alive"
                    assert time.monotonic() - started < 0.5
                    assert conn.transport.get_write_buffer_size() <= 64 * 1024
        finally:
            flooder.join(30)
        assert not failed, f"the server stopped taking the flood: {failed[0]!r}; {_reading_facts(conn)}"
        # Now read the answers, up to the echo of a last message: a pong for the last ping of
        # each share of input handled, not one per ping (RFC 6455 5.5.3 allows that).
        peer.send(TextMessage(data="end"))
        pongs = 0
        while isinstance(event := peer.next_event(), Pong):
            pongs += 1
        assert isinstance(event, TextMessage) and event.data == "end"
    assert 0 < pongs < count / 20
