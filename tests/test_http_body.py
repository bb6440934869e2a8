"""Request and response bodies: streaming both ways, chunked, 100-continue, Content-Length
enforcement, trailers, and the body size limit."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import httpx
import pytest
from conftest import Recorder, echo_app, read_body, request, wait_until


def test_request_body_arrives_in_chunks_with_more_body(serve):
    messages = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            messages.append(message)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Transfer-Encoding", "chunked")]))
        c.send(b"5\r\nhello\r\n")
        wait_until(lambda: messages)
        c.send(b"6\r\n world\r\n0\r\n\r\n")
        assert c.read_response().status == 200
    assert all(m["type"] == "http.request" for m in messages)
    assert b"".join(m["body"] for m in messages) == b"hello world"
    assert messages[0]["more_body"] is True
    assert messages[-1]["more_body"] is False


def test_get_without_body_gives_one_empty_message(serve):
    got = []

    async def app(scope, receive, send):
        got.append(await receive())
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 204
    assert got == [{"type": "http.request", "body": b"", "more_body": False}]


def test_chunked_echo_large(serve):
    srv = serve(echo_app)
    payload = bytes(range(256)) * 4096  # 1 MiB
    with httpx.Client(base_url=srv.url) as client:
        r = client.post("/", content=iter([payload[i : i + 50000] for i in range(0, len(payload), 50000)]))
    assert r.status_code == 200
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.content == payload


def test_streaming_response_chunks(serve):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"%d," % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
    assert resp.chunked and resp.body == b"0,1,2,3,4,"


def test_expect_100_continue_sent_only_when_app_reads(serve):
    release = threading.Event()
    reading = threading.Event()

    async def app(scope, receive, send):
        while not release.is_set():
            await asyncio.sleep(0.005)
        reading.set()
        body = await read_body(receive)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Expect", "100-continue"), ("Content-Length", "4")]))
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.sock.recv(100)  # nothing yet: the app has not asked for the body
        c.sock.settimeout(5)
        release.set()
        status, _, _, _ = c.read_head()
        assert status == 100
        c.send(b"data")
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"data")


def test_expect_100_not_sent_when_app_answers_without_reading(serve):
    srv = serve(_no_read_app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Expect", "100-continue"), ("Content-Length", "1000")]))
        status, _, headers, _ = c.read_head()
        assert status == 200
        assert (b"connection", b"close") in headers


async def _no_read_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"no"})


def test_unread_body_is_discarded_and_connection_reused(serve):
    srv = serve(_no_read_app)
    with srv.connect() as c:
        c.send(request("POST", body=b"x" * 200_000))
        assert c.read_response().body == b"no"
        c.send(request())
        assert c.read_response().body == b"no"


@pytest.mark.parametrize("declared,parts", [(5, [b"too", b" long!"]), (10, [b"sh", b"ort"])])
def test_content_length_mismatch_closes_connection(serve, caplog, declared, parts):
    errors = []

    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(declared).encode())],
            }
        )
        try:
            await send({"type": "http.response.body", "body": parts[0], "more_body": True})
            await send({"type": "http.response.body", "body": parts[1]})
        except RuntimeError as exc:
            errors.append(exc)
            raise

    srv = serve(app)
    with caplog.at_level(logging.ERROR, logger="treadle.error"):
        with srv.connect() as c:
            c.send(request())
            status, _, headers, _ = c.read_head()
            assert status == 200
            rest = c.read_until_close()
            assert rest == parts[0]  # what was valid went out, the offending chunk did not
        wait_until(lambda: errors)
    assert "Content-Length" in str(errors[0])
    assert any("Content-Length" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("declared,body", [(5, b"too long!"), (10, b"short")])
def test_content_length_mismatch_before_anything_sent_is_500(serve, declared, body):
    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(declared).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
        assert resp.status == 500
        assert body not in resp.body
        assert c.is_closed()


def test_content_length_split_over_chunks(serve):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request())
        resp = c.read_response()
        assert resp.body == b"abcdef" and not resp.chunked
        c.send(request())
        assert c.read_response().body == b"abcdef"


def _trailer_app(scope, receive, send):
    async def run():
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "trailers": True,
                "headers": [(b"trailer", b"x-checksum")],
            }
        )
        await send({"type": "http.response.body", "body": b"payload", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")], "more_trailers": True}
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-more", b"1")]})

    return run()


def test_trailers_sent_when_client_accepts_them(serve):
    srv = serve(_trailer_app)
    with srv.connect() as c:
        c.send(request(headers=[("TE", "trailers")]))
        resp = c.read_response()
        assert resp.body == b"payload"
        assert resp.trailers == [(b"x-checksum", b"abc"), (b"x-more", b"1")]
        c.send(request())  # without TE: trailers: dropped, body still properly terminated
        resp = c.read_response()
        assert resp.body == b"payload" and resp.trailers == []


def test_trailers_dropped_with_content_length(serve):
    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "trailers": True,
                "headers": [(b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})
        await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")]})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request(headers=[("TE", "trailers")]))
        assert c.read_response().body == b"ok"
        c.send(request(headers=[("TE", "trailers")]))
        assert c.read_response().body == b"ok"


def test_body_limit_by_content_length_is_413(serve):
    rec = Recorder()
    srv = serve(rec, limit_request_body_size=1000)
    with srv.connect() as c:
        c.send(request("POST", body=b"x" * 1001))
        resp = c.read_response()
        assert resp.status == 413
        assert resp.header(b"connection") == b"close"
    assert rec.scopes == []  # the app never saw it
    with srv.connect() as c:
        c.send(request("POST", body=b"x" * 1000))
        assert c.read_response().status == 200


def test_body_limit_chunked_is_413(serve):
    srv = serve(Recorder(), limit_request_body_size=1000)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Transfer-Encoding", "chunked")]))
        c.send(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        c.send(b"1\r\nx\r\n0\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 413
        assert c.is_closed()


def test_read_flow_control_pauses_the_client(serve):
    """An app that does not read leaves the client blocked, not the server's memory full."""
    started = threading.Event()
    release = threading.Event()
    received = []

    async def app(scope, receive, send):
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        total = 0
        while True:
            m = await receive()
            total += len(m["body"])
            if not m["more_body"]:
                break
        received.append(total)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body"})

    srv = serve(app, limit_request_body_size=None)
    total = 64 * 1024 * 1024
    with srv.connect() as c:
        c.send(request("POST", headers=[("Content-Length", str(total))]))
        wait_until(started.is_set)
        c.sock.settimeout(0.5)
        sent = 0
        chunk = b"z" * 65536
        try:
            while sent < total:
                sent += c.sock.send(chunk)
        except socket.timeout:
            pass
        # The kernel buffers a few MiB at most; the server stopped reading long before 64 MiB.
        assert sent < total / 2
        release.set()
        c.sock.settimeout(10)
        view = memoryview(b"z" * (total - sent))
        c.sock.sendall(view)
        assert c.read_response().status == 200
    assert received == [total]


def test_pipelined_flood_is_not_buffered_without_bound(serve):
    """While one request is in flight, a client pipelining without end gets pushed back."""
    entered = threading.Event()
    release = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/block":
            entered.set()
            while not release.is_set():
                await asyncio.sleep(0.01)
        body = b"ok"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    flood = request() * 20000  # ~600 KB per send
    with srv.connect() as c:
        c.send(request("GET", "/block"))
        wait_until(entered.is_set)
        c.sock.settimeout(0.5)
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:
                sent += c.sock.send(flood)
        except socket.timeout:
            pass
        assert sent < 32 * 1024 * 1024
    release.set()
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().body == b"ok"


def test_expect_100_with_empty_body_keeps_the_connection(serve):
    srv = serve(_no_read_app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Expect", "100-continue"), ("Content-Length", "0")]))
        resp = c.read_response()
        assert resp.header(b"connection") is None
        c.send(request())
        assert c.read_response().body == b"no"


def test_no_100_continue_after_the_response_head(serve):
    """An app that answers, then reads the body, must not get an interim 100 mid-stream."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first,", "more_body": True})
        body = await read_body(receive)
        await send({"type": "http.response.body", "body": body})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("POST", headers=[("Expect", "100-continue"), ("Content-Length", "4")]))
        status, _, headers, _ = c.read_head()
        assert status == 200
        assert (b"connection", b"close") in headers
        c.send(b"body")
        assert c.read_until_close() == b"6\r\nfirst,\r\n4\r\nbody\r\n0\r\n\r\n"
