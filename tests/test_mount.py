"""--mount: several apps, sync and async, behind one server and one port."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import request
from wsgi_apps import environ_app, hello

from treadle.server import StartupError
from treadle.server.cli import build_parser


async def asgi_paths(scope, receive, send):
    body = json.dumps({"path": scope["path"], "root_path": scope["root_path"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _json(srv, target: str) -> dict:
    with srv.connect() as c:
        c.send(request("GET", target))
        resp = c.read_response()
        assert resp.status == 200, (target, resp.status)
        return json.loads(resp.body)


def test_longest_prefix_wins_and_each_app_sees_its_root(serve):
    # environ_app is wrapped in wsgiref's validator, whose (*args) signature says nothing: name it.
    srv = serve(asgi_paths, mounts=[("/api", environ_app, "wsgi"), ("/api/v2", asgi_paths), ("/static/", hello)])
    env = _json(srv, "/api/users/1?x=2")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("/api", "/users/1", "x=2")
    assert _json(srv, "/api/v2/items") == {"path": "/api/v2/items", "root_path": "/api/v2"}
    assert _json(srv, "/api/v2") == {"path": "/api/v2", "root_path": "/api/v2"}
    env = _json(srv, "/api")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/api", "")
    # Prefixes match whole segments: /apix is the main app's.
    assert _json(srv, "/apix") == {"path": "/apix", "root_path": ""}
    assert _json(srv, "/other") == {"path": "/other", "root_path": ""}
    with srv.connect() as c:
        c.send(request("GET", "/static/app.css"))
        assert c.read_response().body == b"hello /app.css"


def test_mounts_extend_the_root_path(serve):
    srv = serve(asgi_paths, root_path="/proxy", mounts=[("/api", environ_app, "wsgi")])
    env = _json(srv, "/api/x")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/proxy/api", "/x")
    assert _json(srv, "/y") == {"path": "/proxy/y", "root_path": "/proxy"}


def test_without_a_main_app_unmatched_paths_are_404(serve):
    srv = serve(None, mounts=[("/wsgi", hello), ("/asgi", asgi_paths)])
    with srv.connect() as c:
        for target, status in (("/wsgi/a", 200), ("/nothing", 404), ("/asgi/b", 200), ("/", 404)):
            c.send(request("GET", target))
            assert c.read_response().status == status, target  # and the connection stays open


def test_mounts_by_import_string_and_undecidable_mounts(serve):
    srv = serve("wsgi_apps:hello", mounts=[("/env", "wsgi_apps:environ_app", "wsgi")], app_dir="tests")
    assert _json(srv, "/env/q")["PATH_INFO"] == "/q"
    with pytest.raises(StartupError, match="mounted at /env: --mount /env=MODULE:APP:INTERFACE"):
        serve(hello, mounts=[("/env", environ_app)])


def test_mount_flag_takes_an_optional_interface():
    parse = build_parser().parse_args
    assert parse(["--mount", "/a/=pkg.mod:app"]).mounts == [("/a", "pkg.mod:app")]
    assert parse(["--mount", "/a=pkg.mod:app:wsgi"]).mounts == [("/a", "pkg.mod:app", "wsgi")]
    assert parse(["--mount", "/a=pkg:wsgi"]).mounts == [("/a", "pkg:wsgi")]  # an attribute named wsgi
    with pytest.raises(SystemExit):
        parse(["--mount", "api=pkg:app"])


def test_fastapi_and_flask_on_one_port(serve):
    fastapi = pytest.importorskip("fastapi")
    flask = pytest.importorskip("flask")

    api = fastapi.FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int, q: str = ""):
        return {"item_id": item_id, "q": q}

    @api.post("/echo")
    async def echo(payload: dict):
        return payload

    web = flask.Flask(__name__)

    @web.route("/hello/<name>")
    def greet(name):
        return f"Hello, {name}! at {flask.request.script_root}{flask.request.path}"

    @web.route("/form", methods=["POST"])
    def form():
        return flask.jsonify(dict(flask.request.form))

    srv = serve(api, mounts=[("/legacy", web)])
    with httpx.Client(base_url=srv.url) as client:
        assert client.get("/items/3", params={"q": "x"}).json() == {"item_id": 3, "q": "x"}
        assert client.post("/echo", json={"a": [1, 2]}).json() == {"a": [1, 2]}
        assert client.get("/legacy/hello/ana").text == "Hello, ana! at /legacy/hello/ana"
        assert client.post("/legacy/form", data={"k": "v"}).json() == {"k": "v"}
        assert client.get("/missing").status_code == 404  # FastAPI's own 404
        assert client.get("/legacy/missing").status_code == 404  # Flask's


def test_websockets_are_routed_by_prefix_and_refused_by_wsgi_apps(serve):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    from ws_helpers import echo_app, ws_url

    srv = serve(None, mounts=[("/live", echo_app), ("/site", hello)])
    with connect(ws_url(srv, "/live/feed")) as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(srv, "/site/feed"), open_timeout=5)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(srv, "/elsewhere"), open_timeout=5)  # no main app
    assert refused.value.response.status_code == 403
