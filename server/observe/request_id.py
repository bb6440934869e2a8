"""Request ids (``--request-id-header NAME``): one per request, to follow it from the proxy's
log through the app's to ours.

A client (or the proxy in front) that sends a valid id in ``NAME`` keeps it; any other
request gets a new one, 16 random bytes in hex as nginx's ``$request_id``. The id is then
everywhere one looks for it:

- in the ASGI scope as ``scope["state"]["request_id"]`` (Starlette's ``request.state``),
  and in the request headers the app sees (``NAME``, exactly once), hence in the WSGI
  environ as ``HTTP_<NAME>`` too, and as ``environ["treadle.request_id"]``;
- in the response, as ``NAME`` (unless the app set that field itself);
- in the access log's ``{request_id}`` field.

Valid means at most ``--limit-request-id-length`` characters (200, Heroku's bound) of
visible ASCII other than ``"`` and ``\\``: safe to echo in a header and to log in a quoted
field. A longer or stranger value is not trusted, nor is a request sending the field more
than once (which of them would be the id?); the request gets a fresh id instead.

Every protocol gets this by building its scope with server/asgi/scope.py, which calls
``assign``; the HTTP/1.1 writer and the WebSocket handshake echo it with ``response_field``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable

_valid = re.compile(rb"[\x21\x23-\x5b\x5d-\x7e]+").fullmatch  # VCHAR but '"' (0x22) and '\' (0x5c)

Headers = list[tuple[bytes, bytes]]


def field_name(config: Any) -> bytes:
    """The configured header's name as a field name is compared and sent: lowercase bytes."""
    return config.request_id_header.lower().encode("ascii")


def assign(headers: Headers, config: Any) -> tuple[str, Headers]:
    """The request's id, and the headers the app is to see: the same list when the client's
    id is taken, else a copy whose ``NAME`` field is the new id."""
    name = field_name(config)
    given = [value for field, value in headers if field == name]
    if len(given) == 1 and len(given[0]) <= config.limit_request_id_length and _valid(given[0]) is not None:
        return given[0].decode("ascii"), headers
    new = os.urandom(16).hex()
    return new, [header for header in headers if header[0] != name] + [(name, new.encode("ascii"))]


def echo(config: Any, scope: dict[str, Any] | None, app_headers: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    """The fields to add to the response to ``scope``'s request (None: no scope was made):
    ``[(NAME, id)]``, or none when the request has no id or the app set ``NAME`` itself."""
    ident = scope["state"].get("request_id") if scope is not None else None
    if ident is None:
        return []
    field = response_field(field_name(config), ident, app_headers)
    return [] if field is None else [field]


def response_field(name: bytes, request_id: str, app_headers: Iterable[Any]) -> tuple[bytes, bytes] | None:
    """The field that echoes the id in a response, or None if the app already set ``name``."""
    for header in app_headers:
        if header[0].lower() == name:
            return None
    return name, request_id.encode("ascii")
