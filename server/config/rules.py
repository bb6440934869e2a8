"""What option values may be: the modes each option takes, and the pure rules about them that
other parts share.

They live here, not in the modules that act on them (``ws_select.py``, ``apps/mount.py``,
``apps/cors_policy.py``...), so that config imports nothing of the server: it stays a leaf
every other part may import without a circle, and an invalid option is refused when the
options are read, before anything starts.
"""

from __future__ import annotations

import re
import ssl
import string
from typing import Iterable

LIFESPAN_MODES = ("auto", "on", "off")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
HTTP_ENGINES = ("h11", "fast")
WS_MODES = ("auto", "wsproto", "none")
INTERFACES = ("auto", "asgi", "asgi3", "asgi2", "wsgi")  # "asgi": ASGI 3
ROOT_PATH_MODES = ("stripped", "kept")
LOG_FORMATS = ("text", "json")
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


# The access line's fields (server/observe/access.py renders them). Those that carry bytes
# the client chose are escaped as nginx does: '"', '\\' and bytes outside printable ASCII
# become \xHH, so a line cannot be split or forged. A missing value is "-".
ACCESS_LOG_FIELDS = {
    "client": "client address and port, as a trusted proxy reported it (127.0.0.1:50000, [::1]:50000)",
    "client_host": "client address alone (Apache %h, nginx $remote_addr)",
    "method": "request method",
    "target": "request target as sent: path and query (escaped)",
    "path": "the target before '?' (escaped)",
    "query": "the target after '?' (escaped; - if none)",
    "protocol": "HTTP/1.1 or HTTP/1.0",
    "request_line": "method, target and protocol (Apache %r, nginx $request)",
    "status": "response status",
    "bytes": "response body bytes sent",
    "duration": "seconds from the complete request head to the response's end (0.000312)",
    "duration_ms": "the same in milliseconds (0.3)",
    "user_agent": "User-Agent (escaped)",
    "referer": "Referer (escaped)",
    "host": "Host (escaped)",
    "request_id": "the request id (--request-id-header)",
    "worker": "process id of the worker that served it",
    "time": "local time the line is written, as Apache and nginx log it (03/Dec/2026:10:15:00 +0000)",
    "time_iso": "the same in ISO 8601 (2026-12-03T10:15:00+00:00)",
}
ACCESS_LOG_PRESETS = {
    "default": '{client} - "{method} {target} {protocol}" {status} {bytes} {duration_ms}ms',
    # Apache's and nginx's: what log analysers (GoAccess, AWStats...) read. nginx writes a
    # body size of 0 as 0 (Apache as -), and so do we.
    "common": '{client_host} - - [{time}] "{request_line}" {status} {bytes}',
    "combined": '{client_host} - - [{time}] "{request_line}" {status} {bytes} "{referer}" "{user_agent}"',
}


def parse_access_log_format(value: str) -> list[tuple[str, str | None]]:
    """A preset's name or a template (``'{client} "{request_line}" {status}'``; ``{{`` and
    ``}}`` for braces) as ``(literal text, field or None)`` pairs; ValueError if it names an
    unknown field or is not a template."""
    template = ACCESS_LOG_PRESETS.get(value, value)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:  # the message differs between CPython and PyPy: say it once, our way
        raise ValueError(f"access_log_format {value!r}: a brace without its pair (write {{{{ or }}}} for one)")
    for _, field, spec, conversion in parts:
        if field is not None and field not in ACCESS_LOG_FIELDS:
            raise ValueError(
                f"access_log_format: unknown field {{{field}}}; the fields are {', '.join(ACCESS_LOG_FIELDS)}, "
                f"and the presets {', '.join(ACCESS_LOG_PRESETS)}"
            )
        if spec or conversion:
            raise ValueError(f"access_log_format: {{{field}}} takes no format spec or conversion")
    return [(literal, field) for literal, field, _, _ in parts]


_token = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+").fullmatch  # RFC 9110 5.6.2
# Fields whose value the server decides: an id echoed in one of them would break the response.
_SERVER_FIELDS = {"content-length", "transfer-encoding", "connection", "date", "server", "upgrade", "trailer"}


def check_request_id_header(name: str | None) -> None:
    """``--request-id-header`` must name a field (a token) the server does not set itself."""
    if name is None:
        return
    if not _token(name):
        raise ValueError(f"request_id_header must be a header name, not {name!r}")
    if name.lower() in _SERVER_FIELDS:
        raise ValueError(f"request_id_header cannot be {name!r}: the server sets that field itself")
