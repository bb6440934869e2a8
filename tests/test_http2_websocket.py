"""WebSockets over HTTP/2 (RFC 8441): the extended CONNECT handshake, the same session and limits
as over HTTP/1.1, several WebSockets and requests on one connection, flow control, closing.

The client is h2 with wsproto's frames-only connection (tests/h2_helpers.py ``H2WebSocket``).
"""

from __future__ import annotations

import threading

import pytest
from conftest import Gate, text_app, wait_until
from h2.errors import ErrorCodes
from h2_helpers import H2Client, H2WebSocket
from tls_support import client_context, tls_options
from wsproto.events import BytesMessage, CloseConnection, TextMessage

seen_scopes: list[dict] = []


async def echo(scope, receive, send):
    """Echoes every message; answers plain requests with "plain"."""
    if scope["type"] == "http":
        await text_app(b"plain")(scope, receive, send)
        return
    seen_scopes.append(scope)
    message = await receive()
    assert message["type"] == "websocket.connect"
    subprotocols = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": subprotocols[0] if subprotocols else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            seen_scopes.append({"disconnect": message["code"]})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def _messages(events):
    return [e.data for e in events if isinstance(e, (TextMessage, BytesMessage))]


@pytest.fixture(autouse=True)
def _fresh_scopes():
    seen_scopes.clear()


def test_echo_and_the_scope_over_cleartext(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/chat?room=1", headers=[("sec-websocket-protocol", "chat, superchat")])
        response = ws.handshake()
        assert response.status == 200
        assert response.header(b"sec-websocket-protocol") == b"chat"
        assert response.header(b"sec-websocket-accept") is None  # RFC 8441 5: no key, no accept
        ws.send(TextMessage(data="hello"))
        ws.send(BytesMessage(data=b"\x00\x01"))
        assert _messages(ws.events(lambda events: len(_messages(events)) == 2)) == ["hello", b"\x00\x01"]
    scope = seen_scopes[0]
    assert (scope["type"], scope["http_version"], scope["scheme"]) == ("websocket", "2", "ws")
    assert (scope["path"], scope["query_string"]) == ("/chat", b"room=1")
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert (b"host", b"localhost") in scope["headers"]


def test_over_tls_the_scope_says_wss(serve_once, certs):
    srv = serve_once(echo, **tls_options(certs))
    with H2Client(srv.port, tls=client_context(certs, alpn=["h2"])) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        ws.send(TextMessage(data="secure"))
        assert _messages(ws.events(lambda events: bool(_messages(events)))) == ["secure"]
    assert seen_scopes[0]["scheme"] == "wss"
    assert "tls" in seen_scopes[0]["extensions"]


def test_websockets_and_requests_share_one_connection(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        sockets = [H2WebSocket(client, f"/{n}") for n in range(3)]
        for ws in sockets:
            assert ws.handshake().status == 200
        plain = client.request("/plain")
        for n, ws in enumerate(sockets):
            ws.send(TextMessage(data=f"to {n}"))
        for n, ws in enumerate(sockets):
            assert _messages(ws.events(lambda events: bool(_messages(events)))) == [f"to {n}"]
        assert client.response(plain).body == b"plain"


def test_permessage_deflate_is_negotiated(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/", deflate=True)
        response = ws.handshake()
        assert response.header(b"sec-websocket-extensions").startswith(b"permessage-deflate")
        text = "compress me " * 1000
        ws.send(TextMessage(data=text))
        assert _messages(ws.events(lambda events: bool(_messages(events)))) == [text]
        assert len(ws.response.body) < len(text) // 10  # it came back compressed


def test_a_wrong_version_is_refused_with_the_one_we_speak(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        client.events_until(lambda: client.conn.remote_settings.enable_connect_protocol == 1)
        fields = [(":protocol", "websocket"), ("sec-websocket-version", "8")]
        stream = client.request("/", method="CONNECT", headers=fields, end=False)
        response = client.response(stream)
        assert response.status == 400
        assert response.header(b"sec-websocket-version") == b"13"
        assert client.response(client.request("/plain")).status == 200  # the connection goes on
    assert seen_scopes == []


def test_a_denial_is_an_ordinary_response_on_the_stream(serve_once):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": [(b"x-why", b"token")]})
        await send({"type": "websocket.http.response.body", "body": b"no token"})

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        response = client.response(ws.stream_id)
        assert (response.status, response.header(b"x-why"), response.body) == (401, b"token", b"no token")


def test_an_app_that_closes_before_accepting_gives_403(serve_once):
    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.close"})

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert client.response(ws.stream_id).status == 403


def test_the_client_closes_and_the_app_hears_its_code(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        ws.send(CloseConnection(code=1000, reason="bye"))
        events = ws.events(lambda events: any(isinstance(e, CloseConnection) for e in events))
        assert [e.code for e in events if isinstance(e, CloseConnection)] == [1000]
        client.events_until(lambda: ws.response.ended or ws.response.reset_code is not None)
        wait_until(lambda: {"disconnect": 1000} in seen_scopes)
        assert client.response(client.request("/plain")).status == 200


def test_a_reset_stream_is_a_disconnect_1006(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        client.conn.reset_stream(ws.stream_id, ErrorCodes.CANCEL)
        client.flush()
        wait_until(lambda: {"disconnect": 1006} in seen_scopes)
        assert client.response(client.request("/plain")).status == 200


def test_a_message_over_the_limit_closes_1009(serve_once):
    srv = serve_once(echo, ws_max_size=1000)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        ws.send(BytesMessage(data=b"x" * 2000))
        events = ws.events(lambda events: any(isinstance(e, CloseConnection) for e in events))
        assert [e.code for e in events if isinstance(e, CloseConnection)] == [1009]
        client.events_until(lambda: ws.response.ended or ws.response.reset_code is not None)
        assert client.response(client.request("/plain")).status == 200


def test_an_app_that_does_not_receive_closes_its_streams_window_only(serve_once):
    """Flow control is the backpressure: what the app leaves unreceived is not credited back,
    so the client's window on that stream closes, while the other streams go on."""
    gate = Gate()

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await text_app(b"plain")(scope, receive, send)
            return
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()  # receives nothing more until released
        while (await receive())["type"] != "websocket.disconnect":
            pass

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        sent = 0
        while client.conn.local_flow_control_window(ws.stream_id) >= 1100:
            ws.send(BytesMessage(data=b"x" * 1000))
            sent += 1
            client.events_until(lambda: True, timeout=0.01) if sent % 16 == 0 else None
            assert sent < 10_000, "the window never closed"
        # The server credits nothing more: the window stays closed.
        assert client.response(client.request("/plain")).body == b"plain"
        window = client.conn.local_flow_control_window(ws.stream_id)
        assert window < 1100
        gate.open()
        client.events_until(lambda: client.conn.local_flow_control_window(ws.stream_id) > 60_000)


def test_shutdown_closes_websockets_with_1012(serve_once):
    srv = serve_once(echo, timeout_graceful_shutdown=5)
    with H2Client(srv.port) as client:
        ws = H2WebSocket(client, "/")
        assert ws.handshake().status == 200
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        try:
            events = ws.events(lambda events: any(isinstance(e, CloseConnection) for e in events))
            assert [e.code for e in events if isinstance(e, CloseConnection)] == [1012]
            ws.send(CloseConnection(code=1012))
            client.read_until_closed(timeout=5)
        finally:
            stopper.join(10)
        assert not stopper.is_alive()


def test_with_websockets_off_extended_connect_is_not_offered(serve_once):
    srv = serve_once(echo, ws="none")
    with H2Client(srv.port) as client:
        client.events_until(lambda: client.conn.remote_settings.initial_window_size == 65535)
        assert client.conn.remote_settings.enable_connect_protocol == 0
        # A client that sends one anyway gets no tunnel: CONNECT is not implemented (RFC 9110 9.3.6).
        fields = [(":protocol", "websocket"), ("sec-websocket-version", "13")]
        stream = client.request("/", method="CONNECT", headers=fields, end=False)
        assert client.response(stream).status == 501
    assert seen_scopes == []
