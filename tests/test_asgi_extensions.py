"""ASGI extensions, on HTTP/1.1 (both engines) and HTTP/2: ``http.response.early_hint`` (103),
``http.response.pathsend``, and ``tls`` (the connection's certificates, version and cipher)."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest
from conftest import request
from h2_helpers import H2Client
from tls_support import client_context, tls_options


async def hinted(scope, receive, send):
    assert "http.response.early_hint" in scope["extensions"]
    await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_early_hints_on_http11(serve):
    srv = serve(hinted)
    with srv.connect() as c:
        c.send(request())
        data = b""
        while not data.endswith(b"ok"):
            data += c.sock.recv(65536)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first == b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style"
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")


def test_no_early_hints_for_an_http10_client(serve):
    srv = serve(hinted)
    with srv.connect() as c:
        c.send(request(version="1.0"))
        assert c.sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")  # RFC 9110 15.2: no 1xx to 1.0


def test_early_hints_on_http2(serve_once):
    srv = serve_once(hinted)
    with H2Client(srv.port) as client:
        response = client.response(client.request())
    assert response.informational == [[(b":status", b"103"), (b"link", b"</style.css>; rel=preload; as=style")]]
    assert response.status == 200 and response.body == b"ok"


@pytest.fixture
def page(tmp_path):
    path = tmp_path / "page.html"
    path.write_bytes(b"<p>" + b"x" * 300_000 + b"</p>")
    return path


def _pathsend(path):
    async def app(scope, receive, send):
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


def test_pathsend_on_http11(serve, page):
    srv = serve(_pathsend(page))
    assert httpx.get(srv.url + "/", timeout=5).content == page.read_bytes()


def test_pathsend_on_http2(serve_once, page):
    srv = serve_once(_pathsend(page))
    with H2Client(srv.port) as client:
        assert client.response(client.request()).body == page.read_bytes()


def test_pathsend_refuses_a_relative_path(serve, caplog):
    srv = serve(_pathsend("page.html"))
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 500  # the head was still held: a clean 500 instead
    assert any("must be an absolute path" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def tls_scope(scope, receive, send):
    body = json.dumps(scope["extensions"].get("tls")).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def test_tls_extension_on_http11_and_http2(serve_once, certs):
    srv = serve_once(tls_scope, **tls_options(certs))
    plain = httpx.get(f"https://127.0.0.1:{srv.port}/", verify=client_context(certs), timeout=5).json()
    assert plain["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert plain["server_cert"] == open(certs["cert"]).read().split("-----END CERTIFICATE-----")[0] + (
        "-----END CERTIFICATE-----\n"
    )
    assert plain["tls_version"] in (0x0303, 0x0304)
    assert isinstance(plain["cipher_suite"], int) and 0 < plain["cipher_suite"] < 0x10000
    assert plain["client_cert_chain"] == [] and plain["client_cert_name"] is None
    with H2Client(srv.port, tls=client_context(certs, alpn=["h2"])) as client:
        over_h2 = json.loads(client.response(client.request()).body)
    assert over_h2 == plain


def test_tls_extension_names_the_client_certificate(serve_once, certs):
    srv = serve_once(tls_scope, **tls_options(certs, ssl_ca_certs=certs["ca"], ssl_cert_reqs=ssl.CERT_REQUIRED))
    seen = httpx.get(
        f"https://127.0.0.1:{srv.port}/", verify=client_context(certs, client_cert=True), timeout=5
    ).json()
    assert seen["client_cert_chain"] and seen["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    # RFC 4514, most specific first: trustme puts the identity in the SAN, the subject is O and OU
    assert seen["client_cert_name"].startswith("OU=Testing cert") and ",O=trustme" in seen["client_cert_name"]
    assert seen["client_cert_error"] is None


def test_no_tls_extension_in_the_clear(serve):
    srv = serve(tls_scope)
    assert httpx.get(srv.url + "/", timeout=5).json() is None
