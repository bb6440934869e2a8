"""WebSocket sessions that go right: echo, fragments, large messages, subprotocols, the scope,
compression, FastAPI — with the ``websockets`` library as the peer."""

from __future__ import annotations

import os
import ssl

import httpx
import pytest
from conftest import Recorder, request
from fastapi import FastAPI, WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from ws_helpers import Events, echo_app, ws_url, wss_session


def test_echo_text_and_binary(serve):
    srv = serve(echo_app)
    with connect(ws_url(srv)) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\xffbinary")
        assert ws.recv(timeout=5) == b"\x00\xffbinary"
        ws.send("")
        assert ws.recv(timeout=5) == ""


def test_fragmented_message_arrives_whole(serve):
    srv = serve(echo_app)
    with connect(ws_url(srv)) as ws:
        ws.send(["frag", "ment", "ed ✓"])  # one message in three frames
        assert ws.recv(timeout=5) == "fragmented ✓"
        ws.send([b"a" * 1000, b"b" * 1000])
        assert ws.recv(timeout=5) == b"a" * 1000 + b"b" * 1000


@pytest.mark.parametrize("compression", ["deflate", None])
def test_large_messages(serve, compression):
    srv = serve(echo_app)
    payload = os.urandom(3 * 1024 * 1024)  # well past every buffer and watermark
    with connect(ws_url(srv), max_size=None, compression=compression) as ws:
        ws.send(payload)
        assert ws.recv(timeout=10) == payload
        text = "ü" * (1024 * 1024)
        ws.send(text)
        assert ws.recv(timeout=10) == text


def test_subprotocol_choice_and_accept_headers(serve):
    async def app(scope, receive, send):
        await receive()
        assert scope["subprotocols"] == ["chat.v2", "chat.v1"]
        await send({"type": "websocket.accept", "subprotocol": "chat.v1", "headers": [(b"x-session", b"42")]})
        await receive()

    srv = serve(app)
    with connect(ws_url(srv), subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v1"
        assert ws.response.headers["x-session"] == "42"
        assert ws.response.headers["server"] == "treadle"
        assert "date" in ws.response.headers


def test_no_subprotocol_when_app_picks_none(serve):
    srv = serve(echo_app)
    with connect(ws_url(srv)) as ws:
        assert ws.subprotocol is None


def test_scope(serve):
    seen = Events()

    async def app(scope, receive, send):
        seen.add(scope)
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    srv = serve(app, root_path="/api")
    with connect(ws_url(srv, "/chat%20room?x=1&y=%20"), additional_headers={"X-Token": "t"}) as ws:
        local = ws.socket.getsockname()
    scope = seen()[0]
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/api/chat room"
    assert scope["raw_path"] == b"/api/chat%20room"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["root_path"] == "/api"
    assert (b"x-token", b"t") in scope["headers"]
    assert (b"upgrade", b"websocket") in scope["headers"]
    assert scope["client"] == (local[0], local[1])
    assert scope["server"] == ("127.0.0.1", srv.port)
    assert scope["subprotocols"] == []
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["state"] == {}


def test_lifespan_state_reaches_the_scope(serve):
    seen = Events()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["db"] = "connected"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.add(scope["state"])
        await echo_app(scope, receive, send)

    srv = serve(app, lifespan="on")
    with connect(ws_url(srv)) as ws:
        ws.send("x")
        ws.recv(timeout=5)
    assert seen() == [{"db": "connected"}]


def test_per_message_deflate_negotiation(serve):
    srv = serve(echo_app)
    with connect(ws_url(srv)) as ws:
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        ws.send("z" * 10000)
        assert ws.recv(timeout=5) == "z" * 10000
    off = serve(echo_app, ws_per_message_deflate=False)
    with connect(ws_url(off)) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("z" * 10000)
        assert ws.recv(timeout=5) == "z" * 10000


def test_ws_none_serves_upgrades_as_plain_http(serve):
    rec = Recorder()
    srv = serve(rec, ws="none")
    with srv.connect() as c:
        c.send(request(headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
        assert c.read_response().status == 200
    assert rec.scopes[0]["type"] == "http"


def test_other_upgrades_stay_plain_http(serve):
    rec = Recorder()
    srv = serve(rec)
    with srv.connect() as c:
        c.send(request(headers=[("Upgrade", "h2c"), ("Connection", "Upgrade")]))
        assert c.read_response().status == 200
    assert rec.scopes[0]["type"] == "http"


def test_http_and_websocket_on_one_server(serve):
    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            await echo_app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    srv = serve(app)
    with connect(ws_url(srv)) as ws:
        assert httpx.get(srv.url).text == "ok"
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_fastapi_websocket_route(serve):
    api = FastAPI()

    @api.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str):
        await websocket.accept(subprotocol="json")
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"room": room, "echo": data, "q": websocket.query_params.get("q")})

    srv = serve(api)
    with connect(ws_url(srv, "/ws/lobby?q=1"), subprotocols=["json"]) as ws:
        assert ws.subprotocol == "json"
        ws.send('{"n": 1}')
        assert ws.recv(timeout=5) == '{"room":"lobby","echo":{"n":1},"q":"1"}'


def test_wss_over_tls(serve, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(certfile)
    cert.private_key_pem.write_to_path(keyfile)
    seen = Events()

    async def app(scope, receive, send):
        seen.add(scope["scheme"])
        await echo_app(scope, receive, send)

    srv = serve(app, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def talk(ws):
        await ws.send("secret" * 10000)
        return await ws.recv()

    assert wss_session(f"wss://127.0.0.1:{srv.port}/", client_context, talk) == "secret" * 10000
    assert seen() == ["wss"]


def test_mounted_apps_get_their_websockets_and_wsgi_refuses(serve):
    seen = Events()

    async def chat(scope, receive, send):
        seen.add((scope["path"], scope["root_path"]))
        await echo_app(scope, receive, send)

    def wsgi_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi"]

    srv = serve(None, mounts=[("/chat", chat), ("/legacy", wsgi_app)])
    with connect(ws_url(srv, "/chat/room")) as ws:
        ws.send("mounted")
        assert ws.recv(timeout=5) == "mounted"
    assert seen() == [("/chat/room", "/chat")]
    with pytest.raises(InvalidStatus) as info:  # WSGI cannot serve a websocket: denied with 403
        connect(ws_url(srv, "/legacy/ws"))
    assert info.value.response.status_code == 403
