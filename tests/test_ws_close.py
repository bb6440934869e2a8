"""Every way a WebSocket session ends: the peer closes, the app closes (with a reason),
the app fails before or after accepting, denies the handshake, or the server shuts down."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from ws_helpers import Events, RawPeer, echo_app, handshake_request, ws_url
from wsproto.events import AcceptConnection, CloseConnection, Request
from wsproto.frame_protocol import CloseReason

from treadle.server import ClientDisconnected


def recording_echo(seen: Events):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            seen.add(message)
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"]})

    return app


def test_client_close_reaches_the_app_with_code_and_reason(serve):
    seen = Events()
    srv = serve(recording_echo(seen))
    with connect(ws_url(srv)) as ws:
        ws.send("bye soon")
        ws.recv(timeout=5)
        ws.close(code=4001, reason="done here")
        assert ws.protocol.close_rcvd.code == 4001  # the server answered the close handshake
    wait_until(lambda: seen() and seen()[-1]["type"] == "websocket.disconnect")
    assert seen()[-1] == {"type": "websocket.disconnect", "code": 4001, "reason": "done here"}


def test_client_close_without_code_is_1005(serve):
    seen = Events()
    srv = serve(recording_echo(seen))
    with RawPeer(srv.port) as peer:
        peer.handshake()
        peer.send(CloseConnection(code=CloseReason.NO_STATUS_RCVD))  # a close frame without a code
        assert isinstance(peer.next_event(), CloseConnection)
        assert peer.closed_by_server()
    wait_until(lambda: seen() and seen()[-1]["type"] == "websocket.disconnect")
    assert seen()[-1]["code"] == 1005


def test_client_vanishing_is_1006(serve):
    seen = Events()
    srv = serve(recording_echo(seen))
    with connect(ws_url(srv)) as ws:
        ws.socket.close()  # no close frame at all
    wait_until(lambda: seen() and seen()[-1]["type"] == "websocket.disconnect")
    assert seen()[-1]["code"] == 1006


def test_server_close_with_reason(serve):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "last words"})
        await send({"type": "websocket.close", "code": 4003, "reason": "policy says no"})
        seen.add(await receive())

    srv = serve(app)
    with connect(ws_url(srv)) as ws:
        assert ws.recv(timeout=5) == "last words"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 4003
    assert info.value.rcvd.reason == "policy says no"
    wait_until(seen)
    assert seen()[0]["type"] == "websocket.disconnect"


def test_app_returning_while_open_closes_normally(serve):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})

    srv = serve(app)
    with connect(ws_url(srv)) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1000


def test_app_raising_after_accept_closes_1011_and_server_keeps_serving(serve):
    async def app(scope, receive, send):
        if scope["path"] == "/ok":
            return await echo_app(scope, receive, send)
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise ValueError("boom")

    srv = serve(app)
    with connect(ws_url(srv, "/ok")) as healthy:
        with connect(ws_url(srv, "/fail")) as ws:
            ws.send("trigger")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
        assert info.value.rcvd.code == 1011
        healthy.send("fine")
        assert healthy.recv(timeout=5) == "fine"


def test_app_raising_before_accept_is_500(serve):
    async def app(scope, receive, send):
        raise ValueError("boom")

    srv = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv))
    assert info.value.response.status_code == 500
    assert info.value.response.body == b"500 Internal Server Error\n"


def test_app_returning_without_accepting_is_500(serve):
    async def app(scope, receive, send):
        await receive()

    srv = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv))
    assert info.value.response.status_code == 500


def test_close_before_accept_is_403(serve):
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        seen.add(await receive())

    srv = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv))
    assert info.value.response.status_code == 403
    wait_until(seen)
    assert seen()[0]["type"] == "websocket.disconnect"


def test_denial_response_extension(serve):
    async def app(scope, receive, send):
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send({
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        })
        await send({"type": "websocket.http.response.body", "body": b'{"error":', "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b'"no token"}'})

    srv = serve(app)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(srv))
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.body == b'{"error":"no token"}'


def test_send_after_peer_left_raises_client_disconnected(serve):
    outcome = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except ClientDisconnected as exc:
            outcome.add(exc)

    srv = serve(app)
    with connect(ws_url(srv)):
        pass
    wait_until(outcome)
    assert isinstance(outcome()[0], OSError)


def test_invalid_messages_from_the_app_are_its_errors(serve):
    errors = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        for bad in (
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
            {"type": "websocket.send"},
            {"type": "websocket.accept"},
            {"type": "websocket.close", "code": 99},
        ):
            try:
                await send(bad)
            except RuntimeError as exc:
                errors.add(str(exc))
        await send({"type": "websocket.send", "text": "still open"})

    srv = serve(app)
    with connect(ws_url(srv)) as ws:
        assert ws.recv(timeout=5) == "still open"
    assert len(errors()) == 4


def test_shutdown_closes_open_sessions_with_1012(serve):
    seen = Events()
    srv = serve(recording_echo(seen))
    with connect(ws_url(srv)) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    stopper.join(10)
    assert not stopper.is_alive()
    assert info.value.rcvd.code == 1012
    assert seen()[-1]["type"] == "websocket.disconnect" and seen()[-1]["code"] == 1012


def test_shutdown_waits_for_the_app_up_to_the_graceful_timeout(serve):
    finished = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        assert message["code"] == 1012
        await asyncio.sleep(0.3)  # the app's own clean-up after the disconnect
        finished.add("clean-up done")

    srv = serve(app, timeout_graceful_shutdown=5)
    with connect(ws_url(srv)):
        srv.stop()
    assert finished() == ["clean-up done"]


def test_session_accepted_during_shutdown_is_closed_1012(serve):
    release = threading.Event()
    seen = Events()

    async def app(scope, receive, send):
        await receive()
        while not release.is_set():  # still deciding when the shutdown begins
            await asyncio.sleep(0.005)
        await send({"type": "websocket.accept"})
        seen.add(await receive())

    srv = serve(app)
    with RawPeer(srv.port) as peer:
        peer.send(Request(host="test", target="/"))
        wait_until(lambda: srv.state.active_requests == 1)
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        wait_until(lambda: srv.state.closing)
        release.set()
        assert isinstance(peer.next_event(), AcceptConnection)
        event = peer.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1012
        peer.send(event.response())
        assert peer.closed_by_server()
    stopper.join(10)
    assert not stopper.is_alive()
    assert seen()[0]["code"] == 1012


def test_app_that_ignores_shutdown_is_cancelled_after_the_graceful_timeout(serve):
    cancelled = Events()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await asyncio.sleep(3600)  # never looks at receive()
        except asyncio.CancelledError:
            cancelled.add(True)
            raise

    srv = serve(app, timeout_graceful_shutdown=0.3)
    with connect(ws_url(srv)) as ws:
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 5
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1012
    assert cancelled() == [True]


@pytest.mark.parametrize("fault", ["too-long-body", "raises-mid-body"])
def test_broken_denial_response_closes_the_connection(serve, fault):
    async def app(scope, receive, send):
        await receive()
        headers = [(b"content-length", b"5")] if fault == "too-long-body" else []
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        if fault == "too-long-body":
            await send({"type": "websocket.http.response.body", "body": b"0123456789"})
        else:
            await send({"type": "websocket.http.response.body", "body": b"partial", "more_body": True})
            raise ValueError("boom")

    srv = serve(app)
    with srv.connect() as c:
        c.send(handshake_request())
        assert c.read_head()[0] == 401
        assert c.is_closed()  # cut short, never left hanging
        assert not c.buffer.endswith(b"0\r\n\r\n")  # and never made to look complete


def test_close_with_a_bad_reason_is_the_apps_error(serve):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "reason": 42})

    srv = serve(app)
    with connect(ws_url(srv)) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd.code == 1011


def test_a_starlette_endpoint_raising_websocketdisconnect_is_not_an_error(serve, caplog):
    """Starlette's receive_text() raises WebSocketDisconnect once the peer has gone; an
    endpoint that lets it out has done nothing wrong: debug, not "Exception in ASGI application"."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    done = threading.Event()

    async def endpoint(websocket):
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(await websocket.receive_text())
        finally:
            done.set()

    caplog.set_level("DEBUG", logger="treadle.error")
    srv = serve(Starlette(routes=[WebSocketRoute("/", endpoint)]))
    with connect(ws_url(srv)) as ws:
        ws.send("hi")
        assert ws.recv() == "hi"
        ws.socket.close()  # no close frame at all
    assert done.wait(5)
    wait_until(lambda: [r for r in caplog.records if "after the WebSocket peer left" in r.getMessage()])
    # Only the server's loggers: the sync client itself logs an error when its socket is shut
    # under its reader thread (websockets 15 does, 17 does not).
    assert [r.getMessage() for r in caplog.records if r.levelno >= 40 and r.name.startswith("treadle")] == []
