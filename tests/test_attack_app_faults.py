"""Apps that fail at each point of a response (docs/reliability.md): a 500 or a clean close,
a log line, nothing leaked, and the server serving on.

Each fault is run many times in a row against one server, with a request body the app may
leave unread, and the process's descriptors and threads are counted before and after.
"""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from conftest import request, wait_until

BODY = b"u" * (256 * 1024)  # more than the server buffers for an app that does not read
ROUNDS = 25


async def asgi_faults(scope, receive, send):
    fault = scope["path"].strip("/")
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
    if fault == "raise-before-start":
        raise RuntimeError("fault before the response")
    if fault == "return-without-response":
        return
    if fault == "never-reads-body":
        await send(start)
        await send({"type": "http.response.body", "body": b"0123456789"})
        return
    while (await receive()).get("more_body"):
        pass
    await send(start)
    if fault == "raise-after-start":
        await send({"type": "http.response.body", "body": b"01234", "more_body": True})
        raise RuntimeError("fault after the response started")
    await send({"type": "http.response.body", "body": b"0123456789"})


class FailingClose:
    """A WSGI iterable that yields its body, then raises in close()."""

    def __init__(self) -> None:
        self.chunks = [b"01234", b"56789"]

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        raise RuntimeError("fault in close()")


def wsgi_faults(environ, start_response):
    fault = environ["PATH_INFO"].strip("/")
    if fault == "raise-before-start":
        raise RuntimeError("fault before start_response")
    if fault != "never-reads-body":
        environ["wsgi.input"].read()
    if fault == "raise-in-iterable":
        return broken_iterable(start_response)
    start_response("200 OK", [("Content-Length", "10")])
    if fault == "raise-in-close":
        return FailingClose()
    return [b"0123456789"]


def broken_iterable(start_response):
    start_response("200 OK", [("Content-Length", "10")])
    yield b"01234"
    raise RuntimeError("fault inside the iterable")


# fault -> (what the client sees, what the error log says)
CASES = {
    "asgi": {
        "raise-before-start": (500, "Exception in ASGI application"),
        "return-without-response": (500, "returned without starting response"),
        "raise-after-start": ("closed", "Exception in ASGI application"),
        "never-reads-body": (200, None),
    },
    "wsgi": {
        "raise-before-start": (500, "Exception in WSGI application"),
        "raise-in-iterable": ("closed", "Exception in WSGI application"),
        "raise-in-close": (200, "Exception closing the iterable"),
        "never-reads-body": (200, None),
    },
}


def resources() -> tuple[int, int]:
    return len(os.listdir("/proc/self/fd")), threading.active_count()


def outcome(srv, fault: str):
    """The status the client got, or "closed" if the connection ended mid-response."""
    with srv.connect() as c:
        c.send(request("POST", f"/{fault}", body=BODY))
        try:
            response = c.read_response()
        except ConnectionError:
            return "closed"
        if response.status == 200:
            assert response.body == b"0123456789"
        return response.status


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.parametrize("interface", sorted(CASES))
def test_every_fault_is_answered_logged_and_leaves_nothing_behind(serve, caplog, interface):
    app = asgi_faults if interface == "asgi" else wsgi_faults
    srv = serve(app, interface=interface, threads=2)
    cases = CASES[interface]
    for fault, (seen, logged) in cases.items():  # once each, as a warm-up
        caplog.clear()
        assert outcome(srv, fault) == seen, fault
        if logged is not None:
            wait_until(lambda logged=logged: logged in caplog.text)
    wait_until(lambda: not srv.state.connections and srv.state.active_requests == 0)
    before = resources()
    for _ in range(ROUNDS):
        for fault, (seen, _) in cases.items():
            assert outcome(srv, fault) == seen, fault
    wait_until(lambda: not srv.state.connections and srv.state.active_requests == 0)
    assert resources() == before
    assert outcome(srv, "fine") == 200  # and the server serves on


def test_an_app_that_never_answers_holds_only_itself(serve, caplog):
    entered = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/hang":
            entered.set()
            await asyncio.Event().wait()  # never answers, never listens
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    srv = serve(app, timeout_graceful_shutdown=0.5)
    with srv.connect() as c:
        c.send(request("GET", "/hang"))
        assert entered.wait(5)
    # The client gave up: its connection is gone, though the app runs on.
    wait_until(lambda: not srv.state.connections)
    assert srv.state.active_requests == 1
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().body == b"ok"
    srv.stop()  # the stuck app is cancelled after the graceful timeout, and said so
    assert "Cancelling 1 request(s) still running." in caplog.text
    assert srv.state.active_requests == 0
