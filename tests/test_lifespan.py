"""The lifespan protocol: startup/shutdown order, state shared into requests, failures."""

from __future__ import annotations

import logging

import pytest
from conftest import request

from treadle.server import Config, Server, StartupError


def lifespan_app(events, fail_startup=False, fail_shutdown=False):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if fail_startup:
                        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
                        return
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if fail_shutdown:
                        await send({"type": "lifespan.shutdown.failed", "message": "could not flush"})
                    else:
                        await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["db"].encode()
        scope["state"]["db"] = "mutated by a request"  # must not leak into other requests
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_startup_state_and_shutdown(serve, mode):
    events = []
    srv = serve(lifespan_app(events), lifespan=mode)
    assert events == ["lifespan.startup"]
    for _ in range(2):
        with srv.connect() as c:
            c.send(request())
            assert c.read_response().body == b"connected"
    srv.stop()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_lifespan_off_never_calls_the_app(serve):
    events = []
    srv = serve(lifespan_app(events), lifespan="off")
    srv.stop()
    assert events == []


def test_startup_failed_is_reported_and_fatal(caplog):
    server = Server(Config(lifespan_app([], fail_startup=True), port=0, lifespan="auto"))
    with caplog.at_level(logging.INFO, logger="treadle.error"):
        with pytest.raises(StartupError) as info:
            server.start()
    assert info.value.exit_code == 3
    assert not server.running
    messages = [r.getMessage() for r in caplog.records]
    assert "database unreachable" in messages
    assert "Application startup failed. Exiting." in messages


def test_shutdown_failed_is_logged(serve, caplog):
    srv = serve(lifespan_app([], fail_shutdown=True), lifespan="on")
    srv.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert "could not flush" in messages


async def http_only_app(scope, receive, send):
    assert scope["type"] == "http", "I only do HTTP"
    await send({"type": "http.response.start", "status": 204})
    await send({"type": "http.response.body"})


def test_auto_tolerates_an_app_that_raises_on_lifespan(serve, caplog):
    caplog.set_level(logging.INFO, logger="treadle.error")
    srv = serve(http_only_app, lifespan="auto")
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 204
    assert any("unsupported" in r.getMessage() for r in caplog.records)


def test_on_fails_for_an_app_that_raises_on_lifespan(caplog):
    server = Server(Config(http_only_app, port=0, lifespan="on"))
    with pytest.raises(StartupError):
        server.start()
    assert any("Exception in 'lifespan' protocol" in r.getMessage() for r in caplog.records)
