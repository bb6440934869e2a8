"""HTTP/2: negotiation (ALPN, prior knowledge, Upgrade: h2c), the ASGI and WSGI exchanges on
streams, flow control both ways, and real clients (httpx, curl, nghttp, h2 as a raw client)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading

import httpx
import pytest
from conftest import Gate, text_app, wait_until
from h2.errors import ErrorCodes
from h2_helpers import H2Client, RawH2
from hyperframe.frame import DataFrame, GoAwayFrame, PingFrame, RstStreamFrame
from tls_support import client_context, tls_options


async def echo(scope, receive, send):
    """Answers with what it saw: the scope's protocol facts, the headers and the body length."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = {
        "http_version": scope["http_version"],
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "scheme": scope["scheme"],
        "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
        "body": len(body),
    }
    out = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


def test_prior_knowledge_scope_and_headers(serve_once):
    srv = serve_once(echo)
    with H2Client(srv.port) as client:
        stream = client.request(
            "/a%20b?x=1", headers=[("cookie", "a=1"), ("x-one", "1"), ("cookie", "b=2")], authority="example.com"
        )
        response = client.response(stream)
    assert response.status == 200
    seen = json.loads(response.body)
    assert (seen["http_version"], seen["method"], seen["path"], seen["query"]) == ("2", "GET", "/a b", "x=1")
    assert seen["scheme"] == "http"
    names = [name for name, _ in seen["headers"]]
    assert names[0] == "host" and seen["headers"][0][1] == "example.com"  # :authority becomes host, first
    assert not any(name.startswith(":") for name in names)  # pseudo-headers are not headers
    # RFC 9113 8.2.3: cookie crumbs are joined into one field, as an app reads them
    assert [value for name, value in seen["headers"] if name == "cookie"] == ["a=1; b=2"]
    assert response.header(b"server") == b"treadle" and response.header(b"date")


def test_alpn_h2_over_tls_with_httpx_and_the_scope_says_https(serve_once, certs):
    srv = serve_once(echo, **tls_options(certs))
    with httpx.Client(http2=True, verify=client_context(certs), timeout=5) as client:
        response = client.post(f"https://127.0.0.1:{srv.port}/up", content=b"x" * 100_000)
    assert response.http_version == "HTTP/2"
    seen = response.json()
    assert (seen["http_version"], seen["scheme"], seen["body"]) == ("2", "https", 100_000)


def test_many_concurrent_streams_on_one_connection(serve_once):
    """Each stream has its own exchange: 50 requests wait together and all finish."""
    arrived = []
    release = Gate()

    async def app(scope, receive, send):
        arrived.append(scope["path"])
        if len(arrived) == 50:
            release.open()
        await release.wait()
        await text_app(scope["path"].encode())(scope, receive, send)

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        streams = [client.request(f"/{i}") for i in range(50)]
        responses = [client.response(stream) for stream in streams]
    assert [r.body for r in responses] == [f"/{i}".encode() for i in range(50)]


def test_a_slow_app_holds_back_only_its_own_stream(serve_once):
    """Request bodies are credited back as each app reads them: one app that never reads
    leaves the others' uploads flowing on the same connection."""
    stalled = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/slow":
            stalled.set()
            await asyncio.sleep(3600)  # never reads its body
        await echo(scope, receive, send)

    srv = serve_once(app, timeout_graceful_shutdown=0.5)  # the slow app never ends by itself
    with H2Client(srv.port) as client:
        slow = client.request("/slow", method="POST", body=b"s" * 60_000, end=False)
        wait_until(stalled.is_set)
        fast = [client.request(f"/fast{i}", method="POST", body=b"f" * 200_000) for i in range(3)]
        bodies = [json.loads(client.response(stream, timeout=10).body)["body"] for stream in fast]
        assert bodies == [200_000] * 3
        assert not client.responses[slow].ended


def test_flow_control_on_responses_a_client_that_reads_slowly(serve_once):
    """The server sends no more than the client's window, and the rest as it opens."""
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for start in range(0, len(payload), 100_000):
            await send({"type": "http.response.body", "body": payload[start : start + 100_000], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    srv = serve_once(app)
    with H2Client(srv.port, auto_window=False) as client:
        stream = client.request("/")
        response = client.responses[stream]
        client.events_until(lambda: len(response.body) >= 65535)
        with pytest.raises(AssertionError):
            client.events_until(lambda: len(response.body) > 65535, timeout=0.3)  # the window is used up
        assert len(response.body) == 65535
        client.auto_window = True
        client.conn.acknowledge_received_data(65535, stream)
        client.flush()
        client.response(stream, timeout=10)
    assert response.body == payload


def test_wsgi_app_over_http2(serve_once):
    from wsgi_apps import environ_app

    srv = serve_once(environ_app, interface="wsgi")
    with H2Client(srv.port) as client:
        response = client.response(client.request("/w?q=1", method="POST", body=b"data"))
    environ = json.loads(response.body)
    assert environ["SERVER_PROTOCOL"] == "HTTP/2" and environ["PATH_INFO"] == "/w"
    assert environ["HTTP_HOST"] == "localhost" and environ["QUERY_STRING"] == "q=1"


def test_trailers_only_when_the_request_says_te_trailers(serve_once):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"body"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    srv = serve_once(app)
    with H2Client(srv.port) as client:
        asked = client.response(client.request(headers=[("te", "trailers")]))
        not_asked = client.response(client.request())
    assert asked.body == b"body" and asked.trailers == [(b"x-checksum", b"abc")]
    assert not_asked.body == b"body" and not_asked.trailers == [] and not_asked.ended


@pytest.mark.parametrize("method, status", [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_no_body_responses_end_on_their_headers(serve_once, method, status):
    srv = serve_once(text_app(b"never sent", status=status))
    with H2Client(srv.port) as client:
        response = client.response(client.request(method=method))
    assert response.status == status and response.body == b"" and response.ended


def test_errors_stay_on_their_stream(serve_once):
    """A 413, an app's failure and a Content-Length it breaks end their own stream only."""

    async def app(scope, receive, send):
        if scope["path"] == "/boom":
            raise ValueError("boom")
        if scope["path"] == "/short":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
            await send({"type": "http.response.body", "body": b"abc", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await echo(scope, receive, send)

    srv = serve_once(app, limit_request_body_size=1000)
    with H2Client(srv.port) as client:
        too_big = client.request("/big", method="POST", body=b"x" * 2000)
        boom = client.request("/boom")
        short = client.request("/short")
        fine = client.request("/fine")
        assert client.response(too_big).status == 413
        assert client.response(boom).status == 500
        assert client.response(short).reset_code == ErrorCodes.INTERNAL_ERROR
        assert client.response(fine).status == 200


def test_connect_is_not_tunnelled(serve_once):
    """RFC 9110 9.3.6: an origin server that does not tunnel answers CONNECT 501 (older h2
    releases refuse a CONNECT that names no :path as malformed: a PROTOCOL_ERROR); the app
    never sees it."""
    from hpack import Decoder, Encoder
    from hyperframe.frame import HeadersFrame

    calls = []

    async def app(scope, receive, send):
        calls.append(scope)
        await echo(scope, receive, send)

    srv = serve_once(app)
    with RawH2(srv.port) as raw:
        headers = HeadersFrame(1, Encoder().encode([(":method", "CONNECT"), (":authority", "example.com:443")]))
        headers.flags.add("END_HEADERS")
        headers.flags.add("END_STREAM")
        raw.send(headers)
        frames = raw.frames(lambda f: isinstance(f, (HeadersFrame, GoAwayFrame)) and f.stream_id in (0, 1))
    if isinstance(frames[-1], HeadersFrame):
        assert Decoder().decode(frames[-1].data)[0] == (":status", "501")
    else:
        assert frames[-1].error_code == ErrorCodes.PROTOCOL_ERROR
    assert calls == []


def test_h2c_upgrade_and_a_request_with_a_body_stays_http11(serve_once):
    srv = serve_once(echo)
    settings = "AAMAAABkAAQAAP__"  # SETTINGS_MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65535
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(
            b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            b"HTTP2-Settings: " + settings.encode() + b"\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
    with httpx.Client(timeout=5) as client:
        response = client.post(
            f"http://127.0.0.1:{srv.port}/body",
            content=b"abc",
            headers={"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": settings},
        )
    assert response.status_code == 200 and response.json()["http_version"] == "1.1"


def test_no_http2_serves_the_preface_as_a_bad_http11_request(serve_once):
    srv = serve_once(echo, http2=False)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 505 ")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
@pytest.mark.parametrize("flag", ["--http2-prior-knowledge", "--http2"])
def test_curl(serve_once, flag):
    srv = serve_once(echo)
    out = subprocess.run(
        ["curl", "-s", flag, "-d", "hello", f"http://127.0.0.1:{srv.port}/c"],
        capture_output=True,
        timeout=30,
    )
    seen = json.loads(out.stdout)
    # --http2 on http:// upgrades with h2c, which we do only without a body: HTTP/1.1 then
    assert seen["body"] == 5 and seen["http_version"] == ("2" if flag == "--http2-prior-knowledge" else "1.1")


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) not installed")
def test_nghttp_over_tls(serve_once, certs):
    srv = serve_once(echo, **tls_options(certs))
    out = subprocess.run(
        ["nghttp", "-v", f"https://127.0.0.1:{srv.port}/n?1", f"https://127.0.0.1:{srv.port}/n?2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count('"http_version": "2"') == 2


def test_graceful_shutdown_lets_the_streams_in_flight_finish(serve_once):
    gate = Gate()

    async def app(scope, receive, send):
        await gate.wait()
        await text_app(b"finished")(scope, receive, send)

    srv = serve_once(app)
    with RawH2(srv.port) as raw:
        stream = raw.headers("/slow")
        wait_until(lambda: srv.state.active_requests == 1)
        srv.server.request_shutdown()
        frames = raw.frames(lambda f: isinstance(f, PingFrame))
        assert [f.last_stream_id for f in frames if isinstance(f, GoAwayFrame)] == [2**31 - 1]
        answer = PingFrame(0, frames[-1].opaque_data)
        answer.flags.add("ACK")
        raw.send(answer)
        frames = raw.frames(lambda f: isinstance(f, GoAwayFrame))
        assert frames[-1].last_stream_id == stream
        gate.open()
        frames = raw.frames(lambda f: False)
        assert [f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == stream] == [b"finished"]
    srv.server.join(10)
    assert not srv.server.running


def test_a_connection_made_as_shutdown_begins_gets_goaway_and_its_stream_answered(serve_once):
    """The HTTP/2 side of test_attack_shutdown.py's late connection: made after the shutdown
    has told the others, it sends its own GOAWAY and answers the stream it was opened with."""

    async def app(scope, receive, send):
        await asyncio.sleep(0.3)  # still working when a wait for the connections made would end
        await text_app(b"late")(scope, receive, send)

    srv = serve_once(app)
    clients: list[RawH2] = []

    def connect_then_shut_down() -> None:  # on the reactor thread: accepted, not yet made
        raw = RawH2(srv.port)
        raw.headers("/late")
        clients.append(raw)
        srv.server.request_shutdown()

    srv.server.loop.call_soon_threadsafe(connect_then_shut_down)
    wait_until(lambda: clients)
    with clients[0] as raw:
        frames = raw.frames(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags)
        assert b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == 1) == b"late"
        frames += raw.frames(lambda f: False)  # to the close (the PING unanswered: the round trip's deadline)
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        # Both steps of RFC 9113 6.8: every stream let through, then the real last stream.
        assert [(f.last_stream_id, f.error_code) for f in goaways] == [(2**31 - 1, 0), (1, 0)]
    srv.server.join(10)
    assert not srv.server.running


def test_an_event_stream_ends_properly_at_shutdown(serve_once):
    """As on HTTP/1.1: an event stream has no end of its own, so shutdown ends it at once,
    with END_STREAM (a raw client: h2's own client state machine stops at the first GOAWAY)."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        while True:
            await send({"type": "http.response.body", "body": b"data: tick\n\n", "more_body": True})
            await asyncio.sleep(0.05)

    srv = serve_once(app)
    with RawH2(srv.port) as raw:
        stream = raw.headers("/events")
        raw.frames(lambda f: isinstance(f, DataFrame) and b"tick" in f.data)
        srv.server.request_shutdown()
        frames = raw.frames(lambda f: f.stream_id == stream and "END_STREAM" in f.flags)
        assert not any(isinstance(f, RstStreamFrame) for f in frames)  # ended, not cut
    srv.server.join(10)
    assert not srv.server.running


def test_a_clients_goaway_lets_its_streams_in_flight_finish(serve_once):
    """RFC 9113 6.8: after the client's GOAWAY, the streams it opened are still answered (h2
    itself refuses to send anything after a GOAWAY; the connection reopens it for them)."""
    gate = Gate()

    async def app(scope, receive, send):
        await gate.wait()
        await text_app(b"still answered")(scope, receive, send)

    srv = serve_once(app)
    with RawH2(srv.port) as raw:
        stream = raw.headers("/slow")
        wait_until(lambda: srv.state.active_requests == 1)
        raw.send(GoAwayFrame(0, last_stream_id=0))
        gate.open()
        frames = raw.frames(lambda f: False)  # until the server closes
    assert [f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == stream] == [b"still answered"]


def test_the_request_id_and_the_stats_on_http2(serve_once, caplog):
    """--request-id-header works on streams as on HTTP/1.1, and stats and the access log say
    which protocol served each request."""
    caplog.set_level("INFO", logger="treadle.access")

    async def app(scope, receive, send):
        await text_app(scope["state"]["request_id"].encode())(scope, receive, send)

    srv = serve_once(app, request_id_header="X-Request-ID")
    with H2Client(srv.port) as client:
        kept = client.response(client.request(headers=[("x-request-id", "abc-123")]))
        made = client.response(client.request())
    assert kept.body == b"abc-123" and kept.header(b"x-request-id") == b"abc-123"
    assert len(made.body) == 32 and made.header(b"x-request-id") == made.body
    httpx.get(srv.url + "/", timeout=5)  # and one over HTTP/1.1
    wait_until(lambda: srv.state.stats.responses == 3)
    snapshot = srv.state.stats.snapshot(srv.state)
    assert (snapshot["responses_total"], snapshot["responses_http2"]) == (3, 2)
    lines = [r.getMessage() for r in caplog.records if r.name == "treadle.access"]
    assert sum('HTTP/2" 200' in line for line in lines) == 2 and sum('HTTP/1.1" 200' in line for line in lines) == 1


@pytest.mark.parametrize("policy, status", [("strict", 400), ("lenient", 200)])
def test_the_path_policy_holds_on_http2_streams(serve_once, policy, status):
    """As on HTTP/1.1 (tests/test_path_policy.py): a path climbing above the root is refused on
    its stream alone, unless --path-policy lenient; the connection serves on."""
    srv = serve_once(echo, path_policy=policy)
    with H2Client(srv.port) as client:
        refused = client.request("/a/%2e%2e/%2e%2e/etc/passwd")
        assert client.response(refused).status == status
        assert client.response(client.request("/fine")).status == 200
