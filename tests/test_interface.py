"""--interface: telling ASGI 3, ASGI 2 and WSGI apps apart, and serving each."""

from __future__ import annotations

import functools

import pytest
from conftest import request, text_app
from wsgi_apps import hello

from treadle.server import Config, Server, StartupError
from treadle.server.apps.interface import InterfaceError, detect_interface
from treadle.server.cli import build_parser, config_from_args


async def asgi3(scope, receive, send):
    await text_app(b"asgi3")(scope, receive, send)


class Asgi3Instance:
    async def __call__(self, scope, receive, send):
        await text_app(b"asgi3 instance")(scope, receive, send)


def asgi2(scope):
    async def instance(receive, send):
        await text_app(b"asgi2 " + scope["path"].encode())(scope, receive, send)

    return instance


class Asgi2Class:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await text_app(b"asgi2 class")(self.scope, receive, send)


class WsgiInstance:
    def __call__(self, environ, start_response):
        return hello(environ, start_response)


def asgi3_by_decorator(scope, receive, send):
    return asgi3(scope, receive, send)  # not a coroutine function, but three arguments


@pytest.mark.parametrize(
    "app, expected",
    [
        (asgi3, "asgi3"),
        (Asgi3Instance(), "asgi3"),
        (functools.partial(asgi3), "asgi3"),
        (asgi3_by_decorator, "asgi3"),
        (asgi2, "asgi2"),
        (Asgi2Class, "asgi2"),
        (hello, "wsgi"),
        (WsgiInstance(), "wsgi"),
        (functools.partial(hello), "wsgi"),
    ],
)
def test_detection(app, expected):
    assert detect_interface(app) == expected


def test_real_frameworks_are_detected():
    import fastapi
    import flask

    assert detect_interface(flask.Flask(__name__)) == "wsgi"
    assert detect_interface(fastapi.FastAPI()) == "asgi3"


@pytest.mark.parametrize("app", [lambda *args: None, lambda: None, lambda a, b, c, d: None, print])
def test_undecidable_apps_get_an_error_naming_the_flag(app):
    with pytest.raises(InterfaceError, match="--interface asgi3, --interface asgi2 or --interface wsgi"):
        detect_interface(app)


def test_the_server_refuses_to_start_with_an_undecidable_app():
    with pytest.raises(StartupError, match="--interface"):
        Server(Config(lambda *args: None, port=0, lifespan="off")).start()


@pytest.mark.parametrize(
    "app, body",
    [(asgi3, b"asgi3"), (asgi2, b"asgi2 /p"), (Asgi2Class, b"asgi2 class"), (WsgiInstance(), b"hello /p")],
)
def test_each_interface_is_served(serve, app, body):
    srv = serve(app)
    with srv.connect() as c:
        c.send(request("GET", "/p"))
        assert c.read_response().body == body


def test_an_explicit_interface_overrides_detection(serve):
    # Takes *args, so auto cannot tell; the flag can.
    def wsgi_star(*args):
        return hello(*args)

    srv = serve(wsgi_star, interface="wsgi")
    with srv.connect() as c:
        c.send(request("GET", "/x"))
        assert c.read_response().body == b"hello /x"


def test_cli_flags():
    args = build_parser().parse_args(
        ["--interface", "wsgi", "--threads", "3", "--wsgi-queue-size", "7", "--mount", "/api/=a:b", "m:app"]
    )
    config = config_from_args(args)
    assert (config.interface, config.threads, config.wsgi_queue_size) == ("wsgi", 3, 7)
    assert config.mounts == [("/api", "a:b")]
    assert config_from_args(build_parser().parse_args([])).app == "treadle.server.apps.demo:app"
    assert config_from_args(build_parser().parse_args(["--mount", "/a=x:y"])).app is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--mount", "no-equals-sign"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--interface", "cgi"])


def test_config_validates():
    with pytest.raises(ValueError):
        Config(hello, interface="cgi")
    with pytest.raises(ValueError):
        Config(hello, threads=0)
    with pytest.raises(ValueError):
        Config(hello, mounts=[("/", hello)])
