"""The request-target of an HTTP request, split into the ASGI scope's path fields, and the
rules a path must follow to reach an app.

Shared by every scope built from a request (``http`` and ``websocket``; HTTP/1.1 and any other
protocol that carries a path), so all agree on decoding, on absolute-form targets, on
``root_path`` and on which paths are refused.

``--root-path`` says where a proxy mounts the app; ``--root-path-mode`` says who holds it:
``stripped`` (uvicorn's behaviour): the proxy removed it from the request path, so it is put
back in front of ``path`` (ASGI: ``path`` includes ``root_path``; WSGI: ``SCRIPT_NAME``);
``kept`` (gunicorn's ``SCRIPT_NAME``): requests arrive with it in their path, which stays as
sent, and a path outside it is not this app's (404).

``--path-policy strict`` (the default) refuses, with 400, a path that would make an app
serving files from its path misbehave, as nginx refuses them before any location is chosen:
one that climbs above the root through dot-segments (``/../etc/passwd``; ``%2e%2e`` is a
dot-segment once decoded, RFC 3986 2.3), that holds NUL (``%00``: C code, and the file
system, end the string there), that has an invalid percent-escape (``%ZZ``: RFC 3986 2.1
pct-encoded = "%" HEXDIG HEXDIG) or that does not decode as UTF-8 (``%c0%ae``, an overlong
"."; RFC 3629 3: such forms MUST NOT be decoded). ``lenient`` hands them to the app as
decoded as can be (invalid UTF-8 replaced with U+FFFD). ``raw_path`` is always the path as sent.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

# RFC 3986 2.1: pct-encoded = "%" HEXDIG HEXDIG; a "%" that does not start one.
_bad_escape = re.compile(rb"%(?![0-9A-Fa-f]{2})").search


class InvalidPath(ValueError):
    """A request path refused by ``--path-policy strict``: the request gets 400."""


def split_target(
    target: bytes, root_path: str, kept: bool = False, strict: bool = True
) -> tuple[str, bytes, bytes] | None:
    """``(path, raw_path, query_string)`` for a request-target, with ``root_path`` prefixed
    (or, ``kept``, already there: None if it is not). Raises ``InvalidPath`` if ``strict``
    and the path is one the module docstring lists."""
    if target[:1] != b"/" and b"://" in target:  # absolute-form (RFC 9112 3.2.2)
        rest = target.partition(b"://")[2]
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    raw_path, _, query = target.partition(b"?")
    decoded = unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path
    if not strict:
        path = decoded.decode("utf-8", "replace")
    else:
        # A usual path costs one decode and two searches, all in C.
        try:
            path = decoded.decode("utf-8")  # strict: overlong forms, surrogates and stray bytes refused
        except UnicodeDecodeError:
            raise InvalidPath(f"the path {raw_path!r} is not UTF-8 once decoded") from None
        if decoded is not raw_path or "/." in path or "\x00" in path:
            _check_path(raw_path, path)
    if root_path:
        if kept:
            if not path.startswith(root_path) or path[len(root_path) : len(root_path) + 1] not in ("", "/"):
                return None
        else:
            path = root_path + path
            raw_path = root_path.encode("utf-8") + raw_path
    return path, raw_path, query


def _check_path(raw_path: bytes, path: str) -> None:
    """Raise ``InvalidPath`` if ``path`` (``raw_path`` decoded) is one ``--path-policy strict``
    refuses for its escapes, a NUL or its dot-segments."""
    if _bad_escape(raw_path) is not None:
        raise InvalidPath(f"invalid percent-escape in the path {raw_path!r}")
    if "\x00" in path:
        raise InvalidPath(f"NUL in the path {raw_path!r}")
    if "/." in path and _climbs_above_root(path):
        raise InvalidPath(f"the path {raw_path!r} climbs above the root")


def _climbs_above_root(path: str) -> bool:
    """Do the dot-segments of ``path`` (RFC 3986 5.2.4) lead above its first "/"? An empty
    segment ("//") is not counted as a level: a file system joins ``a//..`` as ``a/..``."""
    depth = 0
    for segment in path.split("/")[1:]:
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment and segment != ".":
            depth += 1
    return False
