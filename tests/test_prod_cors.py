"""Built-in CORS: preflights answered per the Fetch standard, headers on actual responses,
Vary: Origin, and no wildcard with credentials."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from treadle.server import Config
from treadle.server.apps.cors import CORSMiddleware
from treadle.server.apps.cors_policy import CORSPolicy


async def plain_app(scope, receive, send):
    headers = [(b"content-type", b"text/plain"), (b"vary", b"Accept-Encoding")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"app"})


def call(middleware: CORSMiddleware, method: str, headers: dict[str, str]) -> tuple[int, dict[bytes, bytes], bytes]:
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(middleware(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


ORIGIN = "https://app.example"


def cors(**options) -> CORSMiddleware:
    options.setdefault("allow_origins", [ORIGIN])
    return CORSMiddleware(plain_app, CORSPolicy(**options))


def preflight(middleware, method="PUT", request_headers=None, origin=ORIGIN):
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers:
        headers["Access-Control-Request-Headers"] = request_headers
    return call(middleware, "OPTIONS", headers)


def test_preflight_allowed():
    status, headers, body = preflight(
        cors(allow_methods=["GET", "PUT"], allow_headers=["X-Token"], max_age=120), request_headers="x-token"
    )
    assert status == 204 and body == b""
    assert headers[b"access-control-allow-origin"] == ORIGIN.encode()
    assert b"PUT" in headers[b"access-control-allow-methods"]
    assert headers[b"access-control-allow-headers"] == b"x-token"
    assert headers[b"access-control-max-age"] == b"120"
    assert headers[b"vary"] == b"Origin"
    assert b"access-control-allow-credentials" not in headers


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"origin": "https://evil.example"}, b"origin"),
        ({"method": "DELETE"}, b"method"),
        ({"request_headers": "X-Token, X-Other"}, b"headers"),
    ],
)
def test_preflight_rejections_are_400(kwargs, problem):
    middleware = cors(allow_methods=["PUT"], allow_headers=["x-token"])
    status, headers, body = preflight(middleware, **kwargs)
    assert status == 400
    assert problem in body
    assert headers[b"vary"] == b"Origin"
    assert b"access-control-allow-origin" not in headers


def test_safelisted_methods_and_headers_need_no_configuration():
    status, _, _ = preflight(cors(allow_methods=[]), method="POST", request_headers="Content-Type, Accept")
    assert status == 204


def test_actual_request_gets_origin_and_vary_appended():
    status, headers, body = call(cors(allow_credentials=True), "GET", {"Origin": ORIGIN})
    assert (status, body) == (200, b"app")
    assert headers[b"access-control-allow-origin"] == ORIGIN.encode()
    assert headers[b"access-control-allow-credentials"] == b"true"
    assert headers[b"vary"] == b"Accept-Encoding, Origin"


def test_disallowed_origin_gets_no_cors_headers_but_the_response():
    status, headers, body = call(cors(), "GET", {"Origin": "https://evil.example"})
    assert (status, body) == (200, b"app")
    assert b"access-control-allow-origin" not in headers


def test_wildcard_origin_without_credentials():
    status, headers, _ = call(cors(allow_origins=["*"]), "GET", {"Origin": "https://any.example"})
    assert headers[b"access-control-allow-origin"] == b"*"
    assert headers[b"vary"] == b"Accept-Encoding"  # the answer does not depend on the origin


def test_no_origin_is_not_cors():
    status, headers, _ = call(cors(), "OPTIONS", {})
    assert status == 200 and b"access-control-allow-origin" not in headers


def test_wildcard_with_credentials_is_refused():
    with pytest.raises(ValueError, match="credentials"):
        cors(allow_origins=["*"], allow_credentials=True)
    with pytest.raises(ValueError, match="credentials"):
        Config(plain_app, cors_allow_origins=["*"], cors_allow_credentials=True)


def test_comma_separated_origins():
    middleware = cors(allow_origins=["https://a.example,https://b.example"])
    assert preflight(middleware, method="GET", origin="https://b.example")[0] == 204


def test_server_with_cors_options(serve):
    running = serve(plain_app, cors_allow_origins=[ORIGIN], cors_allow_methods=["PATCH"], cors_max_age=5)
    response = httpx.options(
        f"http://127.0.0.1:{running.port}/",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PATCH"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-max-age"] == "5"
    assert httpx.get(running.url, headers={"Origin": ORIGIN}).headers["access-control-allow-origin"] == ORIGIN
