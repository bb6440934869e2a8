"""A browser opens its WebSocket over HTTP/2 (RFC 8441): headless Chromium loads a page over TLS
(ALPN h2), and the page's ``new WebSocket("wss://...")`` becomes a stream of that same HTTP/2
connection, since the server announced extended CONNECT. The app sees which protocol carried it.

Skipped without Chromium (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import json

import pytest
from conftest import wait_until
from tls_support import tls_options

from loadtests.chromium import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")

PAGE = b"""<!doctype html><title>ws</title><script>
window.result = null;
const ws = new WebSocket("wss://" + location.host + "/echo", ["chat"]);
const got = [];
ws.onopen = () => { ws.send("hello"); ws.send(new Uint8Array([1, 2, 3])); };
ws.binaryType = "arraybuffer";
ws.onmessage = (event) => {
  got.push(typeof event.data === "string" ? event.data : Array.from(new Uint8Array(event.data)));
  if (got.length === 2) { window.result = JSON.stringify({got, protocol: ws.protocol}); ws.close(1000); }
};
ws.onerror = () => { window.result = JSON.stringify({error: true}); };
</script>"""

seen: list[tuple[str, str]] = []


async def app(scope, receive, send):
    seen.append((scope["type"], scope["http_version"]))
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": PAGE})
        return
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "chat"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            seen.append(("closed", str(message["code"])))
            return
        await send({"type": "websocket.send", **{k: v for k, v in message.items() if k in ("text", "bytes")}})


@pytest.fixture
def browser(tmp_path):
    # The server's certificate comes from a throwaway CA the browser does not know.
    running = Browser(CHROMIUM, tmp_path / "profile", flags=("--ignore-certificate-errors",))
    yield running
    running.close()


def test_chromium_opens_its_websocket_over_the_pages_http2_connection(serve_once, certs, browser):
    seen.clear()
    srv = serve_once(app, **tls_options(certs))
    browser.navigate(f"https://localhost:{srv.port}/")
    result = json.loads(browser.wait_for("window.result"))
    assert result == {"got": ["hello", [1, 2, 3]], "protocol": "chat"}
    assert ("http", "2") in seen
    assert ("websocket", "2") in seen  # the extended CONNECT, not an HTTP/1.1 upgrade
    wait_until(lambda: ("closed", "1000") in seen)
