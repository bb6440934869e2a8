"""What the stats port answers, whichever loop serves it: ``/`` the live dashboard (an HTML
page that reads ``/stats``), ``/stats`` (JSON) and ``/metrics`` (Prometheus).

One function, so that a single server's endpoint (server/observe/endpoint.py, a thread) and a
supervisor's (server/observe/polled_endpoint.py, inside its select loop) say the same.

The page comes with a Content-Security-Policy that lets it run its own inline script and
fetch from its own origin, and nothing else: no other origin's script, no frame around it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, NamedTuple

from treadle.server.observe import prometheus

DASHBOARD = Path(__file__).with_name("dashboard.html").read_bytes()
_PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
)
_NO_STORE = (("Cache-Control", "no-store"),)


class Reply(NamedTuple):
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def respond(path: str, snapshot: Callable[[], dict[str, Any]]) -> Reply:
    """The answer to ``GET path`` (its query ignored)."""
    path = path.partition("?")[0]
    if path == "/":
        return Reply(200, "text/html; charset=utf-8", DASHBOARD, _PAGE_HEADERS + _NO_STORE)
    if path == "/stats":
        return Reply(200, "application/json", (json.dumps(snapshot(), indent=2) + "\n").encode(), _NO_STORE)
    if path == "/metrics":
        return Reply(200, prometheus.CONTENT_TYPE, prometheus.render(snapshot()).encode(), _NO_STORE)
    return Reply(404, "text/plain; charset=utf-8", b"try / (the dashboard), /stats or /metrics\n")
