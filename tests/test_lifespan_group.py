"""Lifespan with mounts: every ASGI app behind the server gets its startup and shutdown."""

from __future__ import annotations

import pytest
from conftest import request
from wsgi_apps import hello

from treadle.server import Config, Server, StartupError


def lifespan_app(name: str, log: list, fail: str = ""):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            if fail == "startup":
                await send({"type": "lifespan.startup.failed", "message": f"{name} cannot start"})
                return
            log.append(f"{name} up")
            scope["state"][name] = "ready"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            log.append(f"{name} down")
            if fail == "shutdown":
                await send({"type": "lifespan.shutdown.failed", "message": f"{name} stuck"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
            return
        body = repr(sorted(scope["state"].items())).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def no_lifespan(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("lifespan? never heard of it")


def test_mounted_asgi_apps_start_and_stop_in_order(serve):
    log: list[str] = []
    srv = serve(
        hello,
        lifespan="auto",
        mounts=[("/a", lifespan_app("a", log)), ("/n", no_lifespan), ("/b", lifespan_app("b", log))],
    )
    assert log == ["a up", "b up"]
    with srv.connect() as c:
        c.send(request("GET", "/b/"))
        assert c.read_response().body == repr([("a", "ready"), ("b", "ready")]).encode()
    srv.stop()
    assert log == ["a up", "b up", "b down", "a down"]


def test_a_mounted_app_failing_startup_fails_the_server_after_stopping_the_others():
    log: list[str] = []
    config = Config(
        lifespan_app("main", log),
        port=0,
        mounts=[("/x", lifespan_app("x", log, fail="startup"))],
    )
    with pytest.raises(StartupError, match="startup failed"):
        Server(config).start()
    assert log == ["main up", "main down"]


def test_when_no_member_supports_lifespan_auto_carries_on_and_on_fails(serve):
    srv = serve(no_lifespan, lifespan="auto", mounts=[("/n", no_lifespan), ("/w", hello)])
    with srv.connect() as c:
        c.send(request("GET", "/w/x"))
        assert c.read_response().body == b"hello /x"
    config = Config(no_lifespan, port=0, lifespan="on", mounts=[("/n", no_lifespan)])
    with pytest.raises(StartupError):
        Server(config).start()


def test_a_failed_shutdown_is_reported_after_every_member_stopped(serve, caplog):
    log: list[str] = []
    srv = serve(lifespan_app("main", log), lifespan="on", mounts=[("/b", lifespan_app("b", log, fail="shutdown"))])
    srv.stop()
    assert log == ["main up", "b up", "b down", "main down"]
    assert "b stuck" in caplog.text
