"""Apps that fail at each point of a response (docs/reliability.md): a 500 or a clean close,
a log line, nothing leaked, and the server serving on.

Each fault is run many times in a row against one server, with a request body the app may
leave unread, and the process's descriptors and threads are counted before and after.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import weakref

import pytest
from conftest import request, wait_until

from loadtests.attack import apps as attack_apps

BODY = b"u" * (256 * 1024)  # more than the server buffers for an app that does not read
ROUNDS = 25
# The faults and what a client must see: the harness's (python -m loadtests.attack).
APPS = {"asgi": (attack_apps.app, attack_apps.ASGI_FAULTS), "wsgi": (attack_apps.wsgi, attack_apps.WSGI_FAULTS)}


def resources() -> tuple[int, int]:
    """Open descriptors and threads, after a collection: without reference counting (PyPy) a
    socket closed by nobody waits for the collector, here or in an earlier test's leftovers."""
    gc.collect()
    return len(os.listdir("/proc/self/fd")), threading.active_count()


def nothing_left(before: tuple[int, int]) -> bool:
    """No more descriptors or threads than ``before`` (fewer: an earlier test's, collected)."""
    now = resources()
    return now[0] <= before[0] and now[1] <= before[1]


def outcome(srv, fault: str) -> str:
    """The status the client got, or "closed mid-body" if the connection ended mid-response."""
    with srv.connect() as c:
        c.send(request("POST", f"/fault/{fault}", body=BODY))
        try:
            response = c.read_response()
        except ConnectionError:
            return "closed mid-body"
        if response.status == 200:
            assert response.body == b"0123456789"
        return str(response.status)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.parametrize("interface", sorted(APPS))
def test_every_fault_is_answered_logged_and_leaves_nothing_behind(serve, caplog, interface):
    app, cases = APPS[interface]
    srv = serve(app, interface=interface, threads=2)
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
    wait_until(lambda: nothing_left(before))
    with srv.connect() as c:  # and the server serves on
        c.send(request())
        assert c.read_response().status == 200


@pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="without reference counting (PyPy) only the collector frees anything"
)
@pytest.mark.parametrize("interface, fault", [("asgi", "raise-before-start"), ("wsgi", "raise-in-iterable")])
def test_a_failed_request_frees_its_connection_without_the_garbage_collector(serve, monkeypatch, interface, fault):
    # A reference cycle (connection -> exchange -> connection) would keep the connection and
    # the unread body in its parser until a collection: 60 MB for 600 such requests.
    # (Not logged here: pytest keeps each record, and its traceback the whole exchange.)
    monkeypatch.setattr(logging.getLogger("treadle.error"), "disabled", True)
    srv = serve(APPS[interface][0], interface=interface)
    gc.disable()
    try:
        with srv.connect() as c:
            connection = weakref.ref(wait_until(lambda: next(iter(srv.state.connections), None)))
            c.send(request("POST", f"/fault/{fault}", body=BODY))
            c.read_until_close()
        wait_until(lambda: connection() is None)
    finally:
        gc.enable()


def test_an_app_that_never_answers_holds_only_itself(serve, caplog):
    srv = serve(attack_apps.app, timeout_graceful_shutdown=0.5)
    with srv.connect() as c:
        c.send(request("GET", "/fault/never-answers"))
        wait_until(lambda: srv.state.active_requests == 1)
    # The client gave up: its connection is gone, though the app runs on.
    wait_until(lambda: not srv.state.connections)
    assert srv.state.active_requests == 1
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().body == attack_apps.HELLO
    srv.stop()  # the stuck app is cancelled after the graceful timeout, and said so
    assert "Cancelling 1 request(s) still running." in caplog.text
    assert srv.state.active_requests == 0
