"""What option values may be: the modes each option takes, and the pure rules about them that
other parts share.

They live here, not in the modules that act on them (``http1/ws_select.py``, ``apps/mount.py``,
``apps/cors_policy.py``...), so that config imports nothing of the server: it stays a leaf
every other part may import without a circle, and an invalid option is refused when the
options are read, before anything starts.
"""

from __future__ import annotations

import ssl
from typing import Iterable

LIFESPAN_MODES = ("auto", "on", "off")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
HTTP_ENGINES = ("h11", "fast")
WS_MODES = ("auto", "wsproto", "none")
INTERFACES = ("auto", "asgi", "asgi3", "asgi2", "wsgi")  # "asgi": ASGI 3
ROOT_PATH_MODES = ("stripped", "kept")
PATH_POLICIES = ("strict", "lenient")
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def parse_cert_reqs(value: str | int) -> int:
    """``none``/``optional``/``required``, or the ``ssl.CERT_*`` number (0, 1, 2) as uvicorn takes it."""
    if isinstance(value, int) and value in CERT_REQS.values():
        return value
    text = str(value).strip().lower()
    if text in CERT_REQS:
        return CERT_REQS[text]
    if text in ("0", "1", "2"):
        return int(text)
    raise ValueError(f"expected one of none, optional, required (or 0, 1, 2), got {value!r}")


def normalize_prefix(prefix: str) -> str:
    """A ``--mount`` prefix: ``"/api/"`` → ``"/api"``; refuses what cannot be a mount point."""
    stripped = prefix.rstrip("/")
    if not prefix.startswith("/") or not stripped:
        raise ValueError(f"A mount prefix must start with '/' and not be '/' itself, got {prefix!r}.")
    return stripped


def comma_list(value: str) -> list[str]:
    """``"GET, PUT"`` → ``["GET", "PUT"]``."""
    return [item.strip() for item in value.split(",") if item.strip()]


def comma_items(values: Iterable[str]) -> list[str]:
    """The items of options that may be repeated, comma-separated, or both
    (``--cors-allow-origin a,b --cors-allow-origin c``)."""
    return [item for value in values for item in comma_list(value)]


def check_credentials(origins: Iterable[str], allow_credentials: bool) -> None:
    """Refuse CORS credentials with the ``*`` origin: a credentialed response may not say ``*``,
    and echoing any origin instead would hand every site the user's cookies."""
    if allow_credentials and "*" in comma_items(origins):
        raise ValueError("CORS credentials cannot be allowed for origin '*': list the origins")
