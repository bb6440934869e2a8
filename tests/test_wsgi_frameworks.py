"""Real WSGI frameworks over real sockets: Flask and Django — a form post, a file upload and
a streamed download each."""

from __future__ import annotations

import os

import httpx
import pytest

UPLOAD = os.urandom(300 * 1024)  # bigger than the frameworks' in-memory upload limits
STREAMED = b"".join(b"%05d" % i * 2000 for i in range(100))


@pytest.fixture
def flask_app():
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)

    @app.post("/form")
    def form():
        return {"fields": flask.request.form.to_dict(), "script": flask.request.script_root}

    @app.post("/upload")
    def upload():
        f = flask.request.files["file"]
        data = f.read()
        return {"name": f.filename, "size": len(data), "sum": sum(data) % 65521}

    @app.get("/download")
    def download():
        def chunks():
            for i in range(100):
                yield b"%05d" % i * 2000

        return flask.Response(flask.stream_with_context(chunks()), mimetype="application/octet-stream")

    return app


@pytest.fixture
def django_app():
    pytest.importorskip("django")
    import django_app

    return django_app.application


def _exercise(base_url: str, script: str = "") -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        resp = client.post("/form", data={"name": "Zoë", "n": "2"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["fields"] == {"name": "Zoë", "n": "2"}
        assert resp.json()["script"] == script

        resp = client.post("/upload", files={"file": ("data.bin", UPLOAD, "application/octet-stream")})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"name": "data.bin", "size": len(UPLOAD), "sum": sum(UPLOAD) % 65521}

        with client.stream("GET", "/download") as resp:
            assert resp.status_code == 200
            # 1 MB: past the 64 KiB hand-off mark the head must leave before the end, so chunked.
            assert resp.headers.get("transfer-encoding") == "chunked"
            assert b"".join(resp.iter_bytes()) == STREAMED


def test_flask(serve, flask_app):
    srv = serve(flask_app)  # auto-detected as WSGI
    _exercise(srv.url)


def test_django(serve, django_app):
    srv = serve(django_app)
    _exercise(srv.url)
    assert httpx.get(srv.url + "/").text == "hello from django"


def test_flask_and_django_mounted_side_by_side(serve, flask_app, django_app):
    srv = serve(None, mounts=[("/flask", flask_app), ("/django", django_app)])
    _exercise(srv.url + "/flask", script="/flask")
    _exercise(srv.url + "/django", script="/django")
