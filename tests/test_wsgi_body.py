"""``wsgi.input``: the request body streamed from the reactor to the worker as the app reads."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from wsgiref.validate import validator

import pytest
from conftest import request, wait_until

from treadle.reactor.transports import MAX_RECV
from treadle.server.http1.connection import MAX_BUFFERED_BODY


def _reader_app(environ, start_response):
    """Reads the body the way ?mode= says and answers with what it got, as JSON."""
    body = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    if mode == "pieces":
        got = [body.read(3), body.read(4), body.read(1000), body.read(5)]
    elif mode == "all":
        got = [body.read(-1), body.read(10)]
    elif mode == "lines":
        got = [body.readline(), body.readline(4), body.readline(), *body.readlines()]
    elif mode == "iter":
        got = list(body)
    else:
        raise AssertionError(mode)
    out = json.dumps([piece.decode() for piece in got]).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [out]


reader_app = validator(_reader_app)
TEXT = b"first line\nsecond\nthird\nlast without newline"


def _read(srv, mode: str, chunked: bool = False) -> list[str]:
    with srv.connect() as c:
        if chunked:
            c.send(request("POST", f"/?{mode}", headers=[("Transfer-Encoding", "chunked")]))
            for piece in (TEXT[:5], TEXT[5:17], TEXT[17:]):
                c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            c.send(b"0\r\n\r\n")
        else:
            c.send(request("POST", f"/?{mode}", body=TEXT))
        resp = c.read_response()
        assert resp.status == 200, resp.body
        return json.loads(resp.body)


def test_read_sizes_never_go_past_the_body(serve):
    srv = serve(reader_app, interface="wsgi")
    text = TEXT.decode()
    assert _read(srv, "pieces") == [text[:3], text[3:7], text[7:], ""]
    assert _read(srv, "all") == [text, ""]


def test_readline_readlines_and_iteration(serve):
    srv = serve(reader_app, interface="wsgi")
    lines = TEXT.decode().splitlines(keepends=True)
    assert _read(srv, "lines") == [lines[0], lines[1][:4], lines[1][4:], lines[2], lines[3]]
    assert _read(srv, "iter") == lines


def test_chunked_request_bodies_read_to_their_end(serve):
    srv = serve(reader_app, interface="wsgi")
    assert _read(srv, "all", chunked=True) == [TEXT.decode(), ""]
    assert _read(srv, "iter", chunked=True) == TEXT.decode().splitlines(keepends=True)


def test_a_large_body_streams_through_a_bounded_buffer(serve):
    """16 MiB, more than the kernel buffers hold: the reactor stops reading while the app
    does not read, holds at most its cap plus one socket read, and the whole body still
    arrives intact."""
    size = 16 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    seen = {}

    def app(environ, start_response):
        body = environ["wsgi.input"]
        wait_until(lambda: body.buffered > MAX_BUFFERED_BODY, timeout=10)
        # The client is still sending, and the reactor is no longer reading into our buffer.
        seen["sender_done_early"] = sent.is_set()
        seen["buffered"] = body.buffered
        digest = hashlib.sha256()
        while True:
            block = body.read(65536)
            if not block:
                break
            digest.update(block)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [digest.hexdigest().encode()]

    srv = serve(app, interface="wsgi")
    sent = threading.Event()
    with srv.connect(timeout=20) as c:

        def send():
            c.send(request("POST", "/", headers=[("Content-Length", str(size))]) + payload)
            sent.set()

        sender = threading.Thread(target=send)
        sender.start()
        resp = c.read_response()
        sender.join(20)
    assert resp.body == hashlib.sha256(payload).hexdigest().encode()
    assert seen["sender_done_early"] is False
    # Reading pauses once the cap is passed, so the overshoot is at most one recv's worth.
    assert seen["buffered"] <= MAX_BUFFERED_BODY + MAX_RECV


@pytest.mark.parametrize("how", ["read()", "read(length)", "readline()"])
def test_one_read_of_more_than_the_buffer_cap_gets_it_all(serve, how):
    """The cap bounds what is buffered for an app that is not reading; an app waiting in
    one read for more than that (Flask and Django read a body with read(CONTENT_LENGTH))
    must get it, not wait for ever on a connection that stopped reading."""
    size = 1024 * 1024  # well past the cap, and with no newline for readline() to stop at
    payload = b"x" * size

    def app(environ, start_response):
        body = environ["wsgi.input"]
        if how == "read()":
            data = body.read()
        elif how == "read(length)":
            data = body.read(int(environ["CONTENT_LENGTH"]))
        else:
            data = body.readline()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [hashlib.sha256(data).hexdigest().encode()]

    srv = serve(app, interface="wsgi")
    with srv.connect(timeout=10) as c:
        c.send(request("POST", "/", body=payload))
        assert c.read_response().body == hashlib.sha256(payload).hexdigest().encode()


def test_100_continue_is_sent_when_the_app_reads(serve):
    srv = serve(reader_app, interface="wsgi")
    with srv.connect() as c:
        c.send(request("POST", "/?all", headers=[("Expect", "100-continue"), ("Content-Length", str(len(TEXT)))]))
        status, _, _, _ = c.read_head()
        assert status == 100
        c.send(TEXT)
        resp = c.read_response()
    assert json.loads(resp.body) == [TEXT.decode(), ""]


def test_no_100_continue_when_the_app_never_reads(serve):
    def app(environ, start_response):
        start_response("403 Forbidden", [("Content-Length", "0")])
        return []

    srv = serve(app, interface="wsgi")
    with srv.connect() as c:
        c.send(request("POST", "/", headers=[("Expect", "100-continue"), ("Content-Length", "10")]))
        resp = c.read_response()
        assert resp.status == 403
        assert resp.header(b"connection") == b"close"  # the client may still send the body: do not reuse


def test_a_client_that_leaves_mid_body_makes_read_raise(serve):
    outcome = {}
    done = threading.Event()

    def app(environ, start_response):
        try:
            environ["wsgi.input"].read(1000)
        except OSError as exc:
            outcome["error"] = exc
        done.set()
        start_response("200 OK", [])
        return [b""]

    srv = serve(app, interface="wsgi")
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(request("POST", "/", headers=[("Content-Length", "1000")]) + b"x" * 10)
    sock.close()
    assert done.wait(5)
    assert isinstance(outcome.get("error"), OSError)
    with srv.connect() as c:
        c.send(request("POST", "/", body=b"y" * 1000))
        assert c.read_response().status == 200
