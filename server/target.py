"""The request-target of an HTTP request, split into the ASGI scope's path fields.

Shared by every scope built from a request line (``http`` and ``websocket``), so both
agree on decoding, on absolute-form targets and on ``root_path``.

``--root-path`` says where a proxy mounts the app; ``--root-path-mode`` says who holds it:
``stripped`` (uvicorn's behaviour): the proxy removed it from the request path, so it is put
back in front of ``path`` (ASGI: ``path`` includes ``root_path``; WSGI: ``SCRIPT_NAME``);
``kept`` (gunicorn's ``SCRIPT_NAME``): requests arrive with it in their path, which stays as
sent, and a path outside it is not this app's (404).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes


def split_target(target: bytes, root_path: str, kept: bool = False) -> tuple[str, bytes, bytes] | None:
    """``(path, raw_path, query_string)`` for a request-target, with ``root_path`` prefixed
    (or, ``kept``, already there: None if it is not)."""
    if target[:1] != b"/" and b"://" in target:  # absolute-form (RFC 9112 3.2.2)
        rest = target.partition(b"://")[2]
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    raw_path, _, query = target.partition(b"?")
    if b"%" in raw_path:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    if root_path:
        if kept:
            if not path.startswith(root_path) or path[len(root_path) : len(root_path) + 1] not in ("", "/"):
                return None
        else:
            path = root_path + path
            raw_path = root_path.encode("utf-8") + raw_path
    return path, raw_path, query
