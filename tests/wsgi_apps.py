"""WSGI apps and helpers shared by the WSGI, mount and interface tests.

Apps are wrapped in ``wsgiref.validate.validator`` where the test is about our side of the
protocol: the standard library's checker then raises inside the worker if the server
hands the app a malformed environ, calls it wrongly, or forgets ``close()`` (the last
shows up as an unraisable-exception warning, which pytest.ini turns into an error).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable
from wsgiref.validate import validator

ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "HTTP_HOST",
    "wsgi.url_scheme",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.input_terminated",
)


def _environ_json(environ: dict, start_response: Any) -> list[bytes]:
    data = {key: environ.get(key) for key in ENVIRON_KEYS}
    data["wsgi.version"] = list(environ["wsgi.version"])
    data["HTTP"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    data["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)).decode("latin-1")
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


environ_app = validator(_environ_json)


def hello(environ: dict, start_response: Any) -> list[bytes]:
    """The fast path: a list of bytes, no Content-Length (the server adds it)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", environ["PATH_INFO"].encode("latin-1")]


class Gate:
    """Lets a test hold an app inside its call and know when it got there."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def wait(self, timeout: float = 10.0) -> None:
        self.entered.set()
        if not self.release.wait(timeout):
            raise RuntimeError("the test never released the gate")


def gated(gate: Gate, then: Callable = hello) -> Callable:
    def app(environ: dict, start_response: Any) -> Any:
        gate.wait()
        return then(environ, start_response)

    return app


class Tracked:
    """An iterable that records whether the server called ``close()`` on it."""

    def __init__(self, chunks: Any) -> None:
        self.chunks = iter(chunks)
        self.closed = threading.Event()
        self.produced = 0

    def __iter__(self) -> Tracked:
        return self

    def __next__(self) -> bytes:
        chunk = next(self.chunks)
        self.produced += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed.set()

