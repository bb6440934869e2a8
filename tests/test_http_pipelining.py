"""Pipelined requests (server/http1/connection.py ``_handle_events``): the requests that
arrived together are answered together, in order — the first response at once, the others
in one write — at most ``PIPELINE_TURN`` of them per turn of the loop, and an app that has
to wait holds back nothing answered before it."""

from __future__ import annotations

import threading

import pytest
from conftest import Gate, request

from treadle.reactor.transports import SocketTransport
from treadle.server.http1.connection import PIPELINE_TURN, Http1Connection


async def path_app(scope, receive, send):
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """What the server's connections read (each ``data_received``) and write (each
    ``transport.write``), recorded on the reactor thread."""
    seen: dict[str, list] = {"reads": [], "writes": []}
    lock = threading.Lock()
    received, write = Http1Connection.data_received, SocketTransport.write

    def data_received(self, data):
        with lock:
            seen["reads"].append(data)
        received(self, data)

    def recording_write(self, data):
        with lock:
            seen["writes"].append(bytes(data))
        write(self, data)

    monkeypatch.setattr(Http1Connection, "data_received", data_received)
    monkeypatch.setattr(SocketTransport, "write", recording_write)
    return seen


def test_requests_read_together_are_answered_in_one_write(serve, wire):
    srv = serve(path_app)
    count = 20
    with srv.connect() as c:
        c.send(b"".join(request("GET", f"/{i}") for i in range(count)))
        bodies = [c.read_response().body for _ in range(count)]
    assert bodies == [f"/{i}".encode() for i in range(count)]
    # Two writes per read that completed requests (the first response, then the others),
    # however many it completed (usually all twenty come in one read); one each would be twenty.
    assert len(wire["writes"]) <= 2 * len(wire["reads"]) < count
    assert b"".join(wire["writes"]).count(b"HTTP/1.1 200 OK") == count


def test_a_turn_of_the_loop_answers_at_most_pipeline_turn_requests(serve, wire):
    srv = serve(path_app)
    count = 2 * PIPELINE_TURN + 5
    with srv.connect() as c:
        c.send(b"".join(request("GET", f"/{i}") for i in range(count)))
        bodies = [c.read_response().body for _ in range(count)]
    assert bodies == [f"/{i}".encode() for i in range(count)]
    per_write = [data.count(b"HTTP/1.1 200 OK") for data in wire["writes"]]
    assert sum(per_write) == count
    # The first read holds more than a turn's worth: its first response, then the turn's others.
    assert max(per_write) == PIPELINE_TURN - 1
    assert len(per_write) >= 5


def test_an_app_that_waits_holds_back_nothing_answered_before_it(serve):
    gate = Gate()

    async def app(scope, receive, send):
        if scope["path"] == "/slow":
            await gate.wait()
        await path_app(scope, receive, send)

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("GET", "/first") + request("GET", "/slow") + request("GET", "/after"))
        assert c.read_response().body == b"/first"  # while /slow still waits
        gate.open()
        assert [c.read_response().body for _ in range(2)] == [b"/slow", b"/after"]


def test_a_file_sent_by_the_kernel_follows_the_responses_held_before_it(serve, tmp_path):
    path = tmp_path / "file.txt"
    path.write_bytes(b"from the file" * 1000)

    async def app(scope, receive, send):
        if scope["path"] != "/file":
            await path_app(scope, receive, send)
            return
        size = path.stat().st_size
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
        await send({"type": "http.response.pathsend", "path": str(path)})

    srv = serve(app)
    with srv.connect() as c:
        c.send(request("GET", "/a") + request("GET", "/file") + request("GET", "/b"))
        assert [c.read_response().body for _ in range(3)] == [b"/a", path.read_bytes(), b"/b"]


def test_responses_held_before_an_error_go_out_before_it(serve):
    srv = serve(path_app)
    with srv.connect() as c:
        c.send(request("GET", "/ok") + b"NOT A REQUEST\r\n\r\n")
        assert c.read_response().body == b"/ok"
        assert c.read_response().status == 400
        assert c.is_closed()
