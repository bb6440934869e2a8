"""The apps every server in the benchmark serves: the same routes as ASGI and as WSGI.

Routes: ``/`` plaintext hello, ``/big`` a 1 MiB response, ``/upload`` reads the whole
request body and answers its size. The framework apps (``/json``) are in apps_fastapi.py
and apps_flask.py, so the plain scenarios never import a framework.
"""

from __future__ import annotations

from typing import Callable, Iterable

HELLO = b"Hello, world!"
BIG = b"x" * (1024 * 1024)
PLAIN = [(b"content-type", b"text/plain")]


async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        return
    path = scope["path"]
    if path == "/upload":
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"%d" % size
    else:
        body = BIG if path == "/big" else HELLO
    headers = PLAIN + [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/upload":
        stream = environ["wsgi.input"]
        size = 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            size += len(chunk)
        body = b"%d" % size
    else:
        body = BIG if path == "/big" else HELLO
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
