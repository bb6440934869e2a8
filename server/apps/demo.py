"""The demo app served by a bare ``treadle``: a page showing what the server received.

Also a compact example of a complete ASGI app (lifespan, body reading, one response).
"""

from __future__ import annotations

import html

from treadle.server.types import Receive, Scope, Send

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Treadle</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}
td{{padding:.15rem .6rem;vertical-align:top}}code{{word-break:break-all}}</style></head>
<body><h1>Treadle is running</h1>
<p>A pure-Python HTTP/1.1 server for ASGI apps. Serve your own with
<code>treadle module:app</code>.</p>
<h2>Your request</h2><table>{request}</table>
<h2>Headers</h2><table>{headers}</table>
</body></html>
"""


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(v)}</code></td></tr>" for k, v in pairs
    )


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    client = scope.get("client")
    request = [
        ("method", scope["method"]),
        ("path", scope["path"]),
        ("query string", scope["query_string"].decode("latin-1")),
        ("HTTP version", scope["http_version"]),
        ("client", f"{client[0]}:{client[1]}" if client else "-"),
        ("body bytes", str(size)),
    ]
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
    body = PAGE.format(request=_rows(request), headers=_rows(headers)).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
