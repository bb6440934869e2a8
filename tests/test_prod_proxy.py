"""--proxy-headers: client address and scheme from trusted proxies only, X-Forwarded-* and
RFC 7239 Forwarded, chains read from the right, http and websocket scopes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prod_apps import info

from treadle.server import Config
from treadle.server.apps.proxy_headers import ProxyHeadersMiddleware, TrustedHosts


def run_scope(scope: dict, trusted: str) -> dict:
    """The scope the app sees behind the middleware."""
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    asyncio.run(ProxyHeadersMiddleware(app, trusted)(scope, None, None))
    return seen


def http_scope(headers: list[tuple[bytes, bytes]], client=("127.0.0.1", 5000), kind="http") -> dict:
    scheme = "ws" if kind == "websocket" else "http"
    return {"type": kind, "scheme": scheme, "client": client, "headers": headers}


def test_x_forwarded_from_trusted_peer():
    scope = run_scope(http_scope([(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]), "127.0.0.1")
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


def test_untrusted_peer_is_ignored():
    headers = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]
    scope = run_scope(http_scope(headers, client=("198.51.100.9", 4000)), "127.0.0.1")
    assert scope["client"] == ("198.51.100.9", 4000)
    assert scope["scheme"] == "http"


def test_chain_is_read_from_the_right_skipping_trusted_proxies():
    # The client forged the first entry; 10.0.0.5 is our own inner proxy.
    headers = [(b"x-forwarded-for", b"1.2.3.4, 203.0.113.7, 10.0.0.5")]
    scope = run_scope(http_scope(headers, client=("10.0.0.1", 1)), "10.0.0.0/8")
    assert scope["client"] == ("203.0.113.7", 0)
    all_trusted = run_scope(http_scope([(b"x-forwarded-for", b"10.1.1.1, 10.0.0.5")], ("10.0.0.1", 1)), "10.0.0.0/8")
    assert all_trusted["client"] == ("10.1.1.1", 0)


def test_rfc7239_forwarded_wins_and_is_parsed():
    headers = [
        (b"x-forwarded-for", b"9.9.9.9"),
        (b"forwarded", b'for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1, for=10.0.0.5;proto=http'),
    ]
    scope = run_scope(http_scope(headers), "127.0.0.1, 10.0.0.5")
    assert scope["client"] == ("2001:db8:cafe::17", 4711)
    assert scope["scheme"] == "https"


def test_forwarded_unknown_and_obfuscated_nodes_keep_the_peer():
    scope = run_scope(http_scope([(b"forwarded", b"for=unknown;proto=https")]), "127.0.0.1")
    assert scope["client"] == ("127.0.0.1", 5000)
    assert scope["scheme"] == "https"


def test_websocket_scheme_follows_the_proxy():
    scope = run_scope(http_scope([(b"x-forwarded-proto", b"https")], kind="websocket"), "*")
    assert scope["scheme"] == "wss"


def test_unknown_proto_is_ignored():
    scope = run_scope(http_scope([(b"x-forwarded-proto", b"javascript")]), "*")
    assert scope["scheme"] == "http"


def test_unix_socket_peers_are_trusted():
    scope = run_scope(http_scope([(b"x-forwarded-for", b"203.0.113.7")], client=None), "127.0.0.1")
    assert scope["client"] == ("203.0.113.7", 0)


@pytest.mark.parametrize(
    "spec, host, trusted",
    [
        ("*", "8.8.8.8", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("10.0.0.0/8, ::1", "10.200.3.4", True),
        ("10.0.0.0/8, ::1", "::1", True),
        ("fd00::/8", "fd12::1", True),
        ("10.0.0.0/8", "not-an-ip", False),
    ],
)
def test_trusted_hosts(spec, host, trusted):
    assert (host in TrustedHosts(spec)) is trusted


def test_forwarded_allow_ips_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.1.2.3")
    assert Config(info).forwarded_allow_ips == "10.1.2.3"
    assert Config(info, forwarded_allow_ips="*").forwarded_allow_ips == "*"
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert Config(info).forwarded_allow_ips == "127.0.0.1"


def test_server_honours_trusted_peer_and_ignores_others(serve):
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    trusted = serve(info, proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    body = httpx.get(f"http://127.0.0.1:{trusted.port}/", headers=headers).json()
    assert body["client"] == ["203.0.113.7", 0] and body["scheme"] == "https"
    untrusted = serve(info, proxy_headers=True, forwarded_allow_ips="192.0.2.1")
    body = httpx.get(f"http://127.0.0.1:{untrusted.port}/", headers=headers).json()
    assert body["client"][0] == "127.0.0.1" and body["scheme"] == "http"
    off = serve(info, proxy_headers=False)
    assert httpx.get(f"http://127.0.0.1:{off.port}/", headers=headers).json()["scheme"] == "http"


def test_by_default_a_proxy_on_this_host_is_trusted_and_no_other(serve):
    """uvicorn's default: proxy headers on, trusting 127.0.0.1 (and Unix-socket peers) only, so
    behind a local nginx the app sees the same client and scheme whichever server runs it."""
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    assert Config(info).proxy_headers is True
    local = serve(info)
    body = httpx.get(f"http://127.0.0.1:{local.port}/", headers=headers).json()
    assert body["client"] == ["203.0.113.7", 0] and body["scheme"] == "https"
    trusted = TrustedHosts("127.0.0.1")
    assert "127.0.0.1" in trusted and None in trusted  # None: a Unix-socket peer
    assert "10.0.0.1" not in trusted and "::1" not in trusted and "not-an-address" not in trusted
    assert "10.0.0.1" not in trusted  # the second time from the memo


def test_the_trusted_peer_memo_is_bounded():
    trusted = TrustedHosts("10.0.0.0/8")
    for number in range(TrustedHosts.MEMO_SIZE * 3):
        assert f"10.{number // 65536}.{number // 256 % 256}.{number % 256}" in trusted
        assert len(trusted._memo) <= TrustedHosts.MEMO_SIZE


def test_wsgi_app_sees_the_forwarded_client_and_scheme(serve):
    from wsgi_apps import environ_app

    running = serve(environ_app, interface="wsgi", proxy_headers=True)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    environ = httpx.get(running.url, headers=headers).json()
    assert environ["REMOTE_ADDR"] == "203.0.113.7"
    assert environ["wsgi.url_scheme"] == "https"


def test_websocket_scope_sees_the_forwarded_client_and_scheme(serve):
    from websockets.sync.client import connect

    async def app(scope, receive, send):
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"{scope['scheme']} {scope['client'][0]}"})
        await send({"type": "websocket.close"})

    running = serve(app, proxy_headers=True)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    with connect(f"ws://127.0.0.1:{running.port}/", additional_headers=headers, open_timeout=5) as ws:
        assert ws.recv(timeout=5) == "wss 203.0.113.7"


def test_access_log_shows_the_forwarded_client():
    from prod_support import Proc

    proc = Proc.treadle("prod_apps:info", "--port", "0", "--proxy-headers")
    try:
        url = f"http://127.0.0.1:{proc.port()}/logged"
        httpx.get(url, headers={"X-Forwarded-For": "203.0.113.7"})
        proc.wait_for(r'203\.0\.113\.7:0 - "GET /logged HTTP/1\.1" 200')
    finally:
        proc.kill_group()
