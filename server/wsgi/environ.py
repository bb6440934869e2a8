"""The WSGI ``environ`` (PEP 3333), built from the same scope the HTTP/1.1 connection makes
for ASGI apps — so a WSGI app sees exactly the request an ASGI app would.

Strings: PEP 3333 wants "native strings" holding the request's bytes as latin-1, so
``PATH_INFO`` is the percent-decoded path's *bytes* decoded as latin-1 (an app re-encodes
with latin-1 and decodes as UTF-8 itself, as Django and Werkzeug do).

``SCRIPT_NAME`` is the scope's ``root_path`` (``--root-path`` plus the mount prefix), and
``PATH_INFO`` the rest of the path, so ``SCRIPT_NAME + PATH_INFO`` is the path the app is
reachable at.

Headers: ``HTTP_*`` keys, with repeated headers joined by ``", "`` (RFC 9110 5.3) — except
``Cookie``, joined by ``"; "`` (RFC 6265 5.4), since a comma inside a cookie list would be
read as part of a value. Header names containing ``_`` are dropped: ``X-Auth_User`` and
``X-Auth-User`` would both become ``HTTP_X_AUTH_USER``, letting a client smuggle a value
past a proxy that sets the dashed one (waitress, gunicorn and nginx do the same).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from treadle.server.observe.logging import error_logger
from treadle.server.types import Scope

WSGI_VERSION = (1, 0)


class ErrorStream:
    """``wsgi.errors``: text written by the app goes to the ``treadle.error`` logger, a line a call."""

    def write(self, text: str) -> int:
        message = text.rstrip("\n")
        if message:
            error_logger.error("%s", message)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing is buffered."""


ERRORS = ErrorStream()


def build_environ(scope: Scope, body: Any, file_wrapper: Any) -> dict[str, Any]:
    """The environ for one request; ``body`` is its ``wsgi.input``."""
    root_path = scope["root_path"]
    script_name = root_path.encode("utf-8").decode("latin-1") if root_path else ""
    raw_path = scope["raw_path"]
    path = unquote_to_bytes(raw_path).decode("latin-1") if b"%" in raw_path else raw_path.decode("latin-1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    server = scope["server"] or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + scope["http_version"],
        "wsgi.version": WSGI_VERSION,
        "wsgi.url_scheme": scope["scheme"],
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # reads end at the body's end, even when chunked
        "wsgi.errors": ERRORS,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": file_wrapper,
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id is not None:
        environ["treadle.request_id"] = request_id  # --request-id-header (also HTTP_<NAME>)
    client = scope["client"]
    if client is not None:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    for name, value in scope["headers"]:
        if b"_" in name:
            continue
        key = name.decode("latin-1").upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
        text = value.decode("latin-1")
        if key in environ:
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
        environ[key] = text
    return environ

