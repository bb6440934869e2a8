"""WSGI apps that fail, a full pool, and shutdown with workers still running."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from conftest import request, wait_until
from wsgi_apps import Gate, gated, hello


def _get(srv, target: str = "/"):
    with srv.connect() as c:
        c.send(request("GET", target))
        return c.read_response()


def _errors(caplog) -> str:
    """What treadle.error logged, tracebacks included."""
    return caplog.text


def test_raising_before_start_response_is_a_500_and_the_pool_survives(serve, caplog):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise ValueError("kaput")
        return hello(environ, start_response)

    srv = serve(app, interface="wsgi", threads=1)
    for _ in range(3):  # one thread: it must survive every failure
        resp = _get(srv, "/boom")
        assert resp.status == 500 and b"kaput" not in resp.body
        assert _get(srv, "/fine").status == 200
    assert "Exception in WSGI application" in _errors(caplog)


def test_raising_after_the_headers_were_sent_closes_the_connection(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "100")])
        yield b"some"
        raise ValueError("kaput")

    srv = serve(app, interface="wsgi")
    with srv.connect() as c:
        c.send(request("GET", "/"))
        status, _, _, _ = c.read_head()
        assert status == 200
        assert c.is_closed()
        assert c.buffer == b"some"


@pytest.mark.parametrize(
    "status, headers, logged",
    [
        ("200", [], "Invalid WSGI status"),
        ("99 Too Low", [], "Invalid WSGI status"),
        (b"200 OK", [], "Invalid WSGI status"),
        ("200 OK", [("X-Bad", "line\r\nInjected: yes")], "Invalid header value"),
        ("200 OK", [("X-Nul", "a\x00b")], "Invalid header value"),
        ("200 OK", [("Bad Name", "x")], "Invalid header name"),
        ("200 OK", [("X-Smile", "\u263a")], "not latin-1"),
        ("200 OK", [("X-Int", 5)], "must be str"),
        ("200 OK", [("X-List", ["unhashable"])], "must be str"),
        ("200 OK", (("X-Tuple", "headers"),), "must be a list"),
    ],
)
def test_a_bad_status_or_header_is_a_500_with_a_clear_log_line(serve, caplog, status, headers, logged):
    def app(environ, start_response):
        start_response(status, headers)
        return [b"never sent"]

    srv = serve(app, interface="wsgi")
    resp = _get(srv)
    assert resp.status == 500 and b"never" not in resp.body and b"Injected" not in b"".join(
        n + v for n, v in resp.headers
    )
    wait_until(lambda: logged in _errors(caplog))
    assert _get(srv).status == 500  # and again: nothing was left in a bad state


def test_wrong_body_types_and_missing_start_response_are_500s(serve):
    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/str":
            start_response("200 OK", [])
            return ["text, not bytes"]
        if path == "/gen-str":
            start_response("200 OK", [])
            return iter(["text"])
        return [b"no start_response"]

    srv = serve(app, interface="wsgi")
    for path in ("/str", "/gen-str", "/none"):
        assert _get(srv, path).status == 500, path


def test_a_body_longer_than_content_length_is_refused(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "3")])
        return [b"too long"]

    srv = serve(app, interface="wsgi")
    assert _get(srv).status == 500


def test_past_the_queue_the_server_answers_503(serve):
    gate = Gate()
    srv = serve(gated(gate), interface="wsgi", threads=1, wsgi_queue_size=1)
    first = srv.connect()
    first.send(request("GET", "/first"))
    assert gate.entered.wait(5)  # the only thread is busy
    second = srv.connect()
    second.send(request("GET", "/second"))  # waits in the queue (size 1)
    wait_until(lambda: srv.server.state.active_requests == 2)
    try:
        resp = _get(srv, "/third")
        assert resp.status == 503
        assert resp.header(b"connection") == b"close"
    finally:
        gate.release.set()
    assert first.read_response().body == b"hello /first"
    assert second.read_response().body == b"hello /second"
    first.close()
    second.close()
    assert _get(srv, "/after").status == 200


def test_graceful_shutdown_waits_for_a_running_worker(serve):
    gate = Gate()
    srv = serve(gated(gate), interface="wsgi")
    with srv.connect() as c:
        c.send(request("GET", "/slow"))
        assert gate.entered.wait(5)
        srv.server.request_shutdown()
        wait_until(lambda: srv.server.state.closing)
        gate.release.set()
        resp = c.read_response()
        assert resp.status == 200 and resp.header(b"connection") == b"close"
    srv.server.join(5)
    assert not srv.server.running


def test_graceful_shutdown_waits_for_a_worker_whose_client_left(serve):
    gate = Gate()
    srv = serve(gated(gate), interface="wsgi")
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(request("GET", "/"))
    assert gate.entered.wait(5)
    sock.close()
    wait_until(lambda: not srv.server.state.connections)
    srv.server.request_shutdown()
    wait_until(lambda: srv.server.state.closing)
    srv.server.join(0.3)  # it has nothing else to wait for, yet must not finish
    assert srv.server.running  # no connection is left, but the worker still runs
    gate.release.set()
    srv.server.join(5)
    assert not srv.server.running


def test_graceful_shutdown_gives_up_on_a_stuck_worker_after_the_timeout(serve, caplog):
    gate = Gate()
    srv = serve(gated(gate), interface="wsgi", timeout_graceful_shutdown=0.3)
    c = srv.connect()
    c.send(request("GET", "/"))
    assert gate.entered.wait(5)
    started = time.monotonic()
    try:
        srv.server.shutdown(5)
        assert not srv.server.running
        assert time.monotonic() - started < 3
        assert c.is_closed()
    finally:
        gate.release.set()
        c.close()


def test_pool_threads_exit_with_the_server(serve):
    srv = serve(hello, interface="wsgi", threads=3)
    assert _get(srv).status == 200
    assert sum(t.name.startswith("treadle-worker") for t in threading.enumerate()) >= 3
    srv.stop()
    wait_until(lambda: not any(t.name.startswith("treadle-worker") for t in threading.enumerate()))


def test_the_error_log_names_the_app(serve, caplog):
    def my_broken_app(environ, start_response):
        raise KeyError("x")

    srv = serve(my_broken_app, interface="wsgi")
    with caplog.at_level(logging.ERROR):
        assert _get(srv).status == 500
    wait_until(lambda: "my_broken_app" in _errors(caplog))
