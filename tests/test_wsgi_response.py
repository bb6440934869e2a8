"""Responses from WSGI apps: framing, write(), exc_info rules, close(), streaming with
backpressure, clients that leave, and wsgi.file_wrapper over os.sendfile."""

from __future__ import annotations

import os
import sys
import threading
from wsgiref.validate import validator

import pytest
from conftest import request, wait_until
from wsgi_apps import Tracked, hello

from treadle.server.wsgi.file_wrapper import FileWrapper


def _get(srv, target: str = "/", method: str = "GET"):
    with srv.connect() as c:
        c.send(request(method, target))
        return c.read_response(head_request=method == "HEAD")


def test_a_list_body_gets_a_content_length_and_keeps_the_connection(serve):
    srv = serve(hello, interface="wsgi")
    with srv.connect() as c:
        for path in ("/a", "/bb"):
            c.send(request("GET", path))
            resp = c.read_response()
            assert resp.body == b"hello " + path.encode()
            assert resp.header(b"content-length") == str(len(resp.body)).encode()
            assert not resp.chunked


def test_head_keeps_the_length_and_sends_no_body(serve):
    srv = serve(validator(hello), interface="wsgi")
    # Unwrapped, hello's list is the whole body at once: a HEAD response carries its length.
    assert _get(serve(hello), "/abc", "HEAD").header(b"content-length") == b"10"
    with srv.connect() as c:  # and nothing follows the head on the wire
        c.send(request("HEAD", "/abc") + request("GET", "/next"))
        c.read_response(head_request=True)
        assert c.read_response().body == b"hello /next"


def test_a_generator_streams_chunked_and_is_closed(serve):
    tracked = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        it = Tracked([b"one ", b"", b"two ", b"three"])
        tracked.append(it)
        return it

    srv = serve(validator(app), interface="wsgi")
    resp = _get(srv)
    assert resp.body == b"one two three"
    assert tracked[0].closed.wait(5)


def test_write_callable_then_iterable(serve):
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        write(b"more, ")
        return [b"returned"]

    srv = serve(validator(app), interface="wsgi")
    assert _get(srv).body == b"written, more, returned"


def test_exc_info_replaces_headers_not_yet_sent(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("boom")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    srv = serve(validator(app), interface="wsgi")
    resp = _get(srv)
    assert (resp.status, resp.body) == (500, b"sorry")


def test_exc_info_after_headers_were_sent_reraises_and_closes(serve):
    tracked = []

    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())  # must re-raise
        tracked.append("not reached")
        return []

    srv = serve(app, interface="wsgi")
    with srv.connect() as c:
        c.send(request("GET", "/"))
        status, _, headers, _ = c.read_head()
        assert status == 200
        assert c.is_closed()
        assert c.buffer.startswith(b"7\r\npartial\r\n") and not c.buffer.endswith(b"0\r\n\r\n")
    assert tracked == []


def test_second_start_response_without_exc_info_is_an_error(serve):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("201 Created", [])
        return [b"x"]

    srv = serve(app, interface="wsgi")
    assert _get(srv).status == 500


def test_backpressure_blocks_the_worker_until_the_client_reads(serve):
    """An endless-looking body: while the client reads nothing, the worker stops in
    write() (after at most the kernel buffers + 2 × 64 KiB); reading resumes it."""
    chunk = b"x" * 65536
    total = 64 * 1024 * 1024
    it = Tracked(chunk for _ in range(total // len(chunk)))

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(total))])
        return it

    def worker_blocked_in_hand_over() -> bool:
        for frame in sys._current_frames().values():
            stack = []
            while frame is not None:
                stack.append(frame.f_code.co_name)
                frame = frame.f_back
            if "_hand_over" in stack and stack[0] == "wait":
                return True
        return False

    srv = serve(app, interface="wsgi")
    with srv.connect(timeout=20) as c:
        c.send(request("GET", "/"))
        wait_until(worker_blocked_in_hand_over, timeout=10)
        produced = it.produced
        assert produced < total // 2
        status, _, headers, _ = c.read_head()
        received = len(c.buffer)
        c.buffer = b""
        while received < total:
            data = c.sock.recv(1 << 20)
            assert data
            received += len(data)
    assert status == 200 and received == total
    assert it.closed.wait(5)


def test_a_client_that_leaves_stops_an_endless_body(serve):
    def forever():
        while True:
            yield b"y" * 65536

    its = []

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/still":
            return hello(environ, start_response)
        start_response("200 OK", [])
        its.append(Tracked(forever()))
        return its[0]

    srv = serve(app, interface="wsgi")
    c = srv.connect()
    c.send(request("GET", "/"))
    c.read_head()
    c.close()
    wait_until(lambda: its and its[0].closed.is_set(), timeout=10)
    assert _get(srv, "/still").status == 200


@pytest.fixture
def payload_file(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return path


def _file_app(path, offset: int = 0):
    def app(environ, start_response):
        f = open(path, "rb")
        f.seek(offset)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 65536)

    return app


def test_file_wrapper_is_sent_with_sendfile(serve, payload_file, monkeypatch):
    calls = []
    real_sendfile = os.sendfile

    def spy(*args):
        calls.append(args)
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    srv = serve(_file_app(payload_file, offset=5), interface="wsgi")
    with srv.connect(timeout=20) as c:
        for _ in range(2):  # the connection stays usable after a sendfile response
            c.send(request("GET", "/"))
            resp = c.read_response()
            assert resp.body == payload_file.read_bytes()[5:]
            assert resp.header(b"content-length") == str(len(resp.body)).encode()
    assert calls


def test_file_wrapper_head_and_non_regular_files(serve, payload_file):
    srv = serve(_file_app(payload_file), interface="wsgi")
    resp = _get(srv, "/", "HEAD")
    assert resp.header(b"content-length") == str(payload_file.stat().st_size).encode()

    def pipe_app(environ, start_response):
        read_end, write_end = os.pipe()
        os.write(write_end, b"through a pipe")
        os.close(write_end)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](os.fdopen(read_end, "rb"))

    srv2 = serve(validator(pipe_app), interface="wsgi")
    assert _get(srv2).body == b"through a pipe"


def test_file_wrapper_falls_back_to_iteration_without_a_file(serve):
    import io

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory " * 1000), 100)

    srv = serve(validator(app), interface="wsgi")
    assert _get(srv).body == b"in memory " * 1000
    assert FileWrapper(io.BytesIO()).file_range() is None


def test_client_gone_during_sendfile_closes_the_file(serve, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * (64 * 1024 * 1024))
    files = []

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/again":
            return hello(environ, start_response)
        f = open(path, "rb")
        files.append(f)
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](f)

    srv = serve(app, interface="wsgi")
    c = srv.connect()
    c.send(request("GET", "/"))
    c.read_head()
    c.close()
    wait_until(lambda: files and files[0].closed, timeout=10)
    assert _get(srv, "/again").status == 200
    wait_until(lambda: all(f.closed for f in files))


def test_close_is_called_even_when_the_iterable_raises(serve):
    its = []

    def failing():
        yield b"ok"
        raise RuntimeError("mid-body")

    def app(environ, start_response):
        start_response("200 OK", [])
        its.append(Tracked(failing()))
        return its[0]

    srv = serve(app, interface="wsgi")
    with srv.connect() as c:
        c.send(request("GET", "/"))
        c.read_head()
        assert c.is_closed()
    assert its[0].closed.wait(5)


def test_threads_run_requests_concurrently(serve):
    barrier = threading.Barrier(3, timeout=5)

    def app(environ, start_response):
        barrier.wait()  # all three requests must be in the app at once
        start_response("200 OK", [])
        return [b"together"]

    srv = serve(app, interface="wsgi", threads=3)
    results = []
    threads = [threading.Thread(target=lambda: results.append(_get(srv).body)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [b"together"] * 3


def test_header_values_lose_leading_and_trailing_whitespace(serve):
    """Django's WSGI handler sends every Set-Cookie value with a leading space."""

    def app(environ, start_response):
        start_response("200 OK", [("Set-Cookie", " csrftoken=abc; Path=/"), ("Content-Type", "text/plain ")])
        return [b"hi"]

    srv = serve(app, interface="wsgi")
    for _ in range(2):  # the second time from the encoded-header cache
        resp = _get(srv)
        assert resp.status == 200 and resp.body == b"hi"
        assert resp.header(b"set-cookie") == b"csrftoken=abc; Path=/"
        assert resp.header(b"content-type") == b"text/plain"
