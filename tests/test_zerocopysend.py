"""The ``http.response.zerocopysend`` extension: ASGI apps (and WSGI file_wrapper responses)
send files with os.sendfile, and over TLS — where the kernel cannot — by reads."""

from __future__ import annotations

import os
import ssl

import httpx
import pytest
from conftest import request


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(1024 * 1024 + 3))
    return path


@pytest.fixture
def sendfile_calls(monkeypatch):
    calls = []
    real = os.sendfile

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    return calls


def file_app(path, with_length: bool):
    async def app(scope, receive, send):
        assert "http.response.zerocopysend" in scope["extensions"]
        size = path.stat().st_size
        headers = [(b"content-length", b"%d" % (size - 10 + 4))] if with_length else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"head", "more_body": True})
        with open(path, "rb") as f:
            f.seek(10)  # no offset: the file's position; no count: the rest of it
            await send({"type": "http.response.zerocopysend", "file": f, "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 0, "count": 0})

    return app


@pytest.mark.parametrize("with_length", [True, False])
def test_asgi_zerocopysend(serve, payload, sendfile_calls, with_length):
    srv = serve(file_app(payload, with_length))
    with srv.connect() as c:
        for _ in range(2):  # the connection stays usable
            c.send(request("GET", "/"))
            resp = c.read_response()
            assert resp.body == b"head" + payload.read_bytes()[10:]
            assert resp.chunked is not with_length
    assert sendfile_calls


@pytest.fixture
def tls(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}, context


def test_over_tls_files_are_copied_instead(serve, payload, tls):
    options, context = tls

    def wsgi_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(payload, "rb"))

    srv = serve(None, mounts=[("/wsgi", wsgi_app), ("/asgi", file_app(payload, True))], **options)
    base = f"https://127.0.0.1:{srv.port}"
    with httpx.Client(verify=context, timeout=10) as client:
        assert client.get(base + "/wsgi/").content == payload.read_bytes()
        assert client.get(base + "/asgi/").content == b"head" + payload.read_bytes()[10:]
