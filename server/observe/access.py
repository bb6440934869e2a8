"""The access log: one line per request on the ``treadle.access`` logger, whatever carried it.

Every connection kind calls these (HTTP/1.1 requests and WebSocket handshakes today), so
the lines look alike and a change of format is made in one place.

``--access-log-format`` picks the line: a preset (``default``, ``common``, ``combined``) or
a template of named fields (declared in config/rules.py). A template is compiled once into a
``%``-style message and one small function per field. The default line, which nearly every
server logs, is written by a path of its own that costs no more than before templates
existed; a test holds it to the same bytes as its template.

Escaping. Fields holding bytes the client chose (target, path, query, Host, User-Agent,
Referer) are escaped as nginx escapes them: ``"``, ``\\`` and any byte outside printable
ASCII become ``\\xHH``. So a request cannot end a line early, forge a second one, or break
out of a quoted field, and every line stays ASCII whatever bytes arrived.

With ``--log-format json`` each record also carries the fields as ``record.access``, which
server/observe/logging.py's ``JsonFormatter`` writes as JSON members.

Discussion — cost. A record is made with ``makeRecord`` and ``handle`` rather than
``logger.info``: ``info`` spends most of its time in ``findCaller``, walking the stack to
learn what is known here already (this module and function). Handlers, filters, formatters
and a record factory set with ``logging.setLogRecordFactory`` all work as usual.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Callable, Iterable, NamedTuple

from treadle.server.config.rules import parse_access_log_format
from treadle.server.observe.logging import access_logger

_INFO = logging.INFO
_DEFAULT_MESSAGE = '%s - "%s %s HTTP/%s" %d %d %.1fms'
_WEBSOCKET_MESSAGE = '%s - "WebSocket %s" %d'

# nginx's escape=default: '"', '\' and bytes outside 0x20-0x7E become \xHH.
_unsafe = re.compile(rb'[^\x20-\x7e]|["\\]')
_needs_escape = _unsafe.search

Headers = Iterable[tuple[bytes, bytes]]


def escape(value: bytes) -> str:
    """``value`` as text safe inside a quoted log field (nginx's escaping)."""
    if _needs_escape(value) is None:
        return value.decode("ascii")
    return _unsafe.sub(lambda match: b"\\x%02X" % match.group()[0], value).decode("ascii")


def format_client(client: tuple[str, int] | None) -> str:
    """``host:port`` as log lines show a client; an IPv6 host in brackets (RFC 3986 3.2.2),
    so that its last group is not read as the port ("[2001:db8::1]:0", not "2001:db8::1:0")."""
    if not client:
        return "-"
    host = client[0]
    return f"[{host}]:{client[1]}" if ":" in host else f"{host}:{client[1]}"


def log_request(
    config: Any,
    client: tuple[str, int] | None,
    method: bytes,
    target: bytes,
    http_version: str,
    status: int,
    body_bytes: int,
    seconds: float,
    headers: Headers = (),
    request_id: str | None = None,
) -> None:
    """``127.0.0.1:50000 - "GET /path?q HTTP/1.1" 200 5 0.3ms`` by default: the client (as a
    trusted proxy reported it), the request line, the status, the body bytes written, the
    duration. ``headers`` (the request's) and ``request_id`` feed the fields that name them."""
    if not config.access_log or not access_logger.isEnabledFor(_INFO):
        return
    form = config.access_log_format
    if form == "default" and config.log_format == "text":
        _emit(
            _DEFAULT_MESSAGE,
            (format_client(client), method.decode("ascii"), escape(target), http_version, status, body_bytes,
             seconds * 1000.0),
        )
        return
    entry = Entry(client, method, target, http_version, status, body_bytes, seconds, headers, request_id)
    _log_entry(config, form, entry)


def log_websocket(
    config: Any,
    client: tuple[str, int] | None,
    target: bytes,
    status: int,
    scope: dict[str, Any] | None = None,
    method: bytes = b"GET",
    http_version: str = "1.1",
) -> None:
    """``127.0.0.1:50000 - "WebSocket /chat" 101`` by default: a handshake's outcome (101, or
    200 over HTTP/2, or the HTTP status it was answered with). A template renders it as the
    request it was (a GET, or HTTP/2's CONNECT), with the headers and request id of its
    ``scope`` (None: refused before one was made)."""
    if not config.access_log or not access_logger.isEnabledFor(_INFO):
        return
    form = config.access_log_format
    if form == "default" and config.log_format == "text":
        _emit(_WEBSOCKET_MESSAGE, (format_client(client), escape(target), status))
        return
    headers, ident = (scope["headers"], scope["state"].get("request_id")) if scope is not None else ((), None)
    entry = Entry(client, method, target, http_version, status, 0, None, headers, ident)
    _log_entry(config, form, entry, websocket=True)


def _log_entry(config: Any, form: str, entry: Entry, websocket: bool = False) -> None:
    if websocket and form == "default":
        message, args = _WEBSOCKET_MESSAGE, (format_client(entry.client), escape(entry.target), entry.status)
    else:
        compiled = _compiled.get(form) or _compile(form)
        message, args = compiled.message, compiled.args(entry)
    _emit(message, args, entry.as_json() if config.log_format == "json" else None)


def _emit(message: str, args: tuple, fields: dict[str, Any] | None = None) -> None:
    record = access_logger.makeRecord(access_logger.name, _INFO, __file__, _LINE, message, args, None, "log_request")
    if fields is not None:
        record.access = fields
    access_logger.handle(record)


_LINE = _emit.__code__.co_firstlineno + 1  # where the record is made, as findCaller would say


class Entry(NamedTuple):
    """What one access line is made of, as the connection had it."""

    client: tuple[str, int] | None
    method: bytes
    target: bytes
    http_version: str
    status: int
    body_bytes: int
    seconds: float | None  # None: not timed (a WebSocket handshake)
    headers: Headers
    request_id: str | None

    def header(self, name: bytes) -> bytes | None:
        for field, value in self.headers:
            if field == name:
                return value
        return None

    def as_json(self) -> dict[str, Any]:
        """The fields as JSON members: numbers as numbers, text as the client sent it (JSON
        escapes it), absent values as null."""
        path, _, query = self.target.partition(b"?")
        client = self.client
        return {
            "client": format_client(client),
            "client_host": client[0] if client else None,
            "method": self.method.decode("ascii"),
            "target": self.target.decode("latin-1"),
            "path": path.decode("latin-1"),
            "query": query.decode("latin-1") if b"?" in self.target else None,
            "protocol": "HTTP/" + self.http_version,
            "status": self.status,
            "bytes": self.body_bytes,
            "duration": self.seconds,
            "user_agent": _text_or_none(self.header(b"user-agent")),
            "referer": _text_or_none(self.header(b"referer")),
            "host": _text_or_none(self.header(b"host")),
            "request_id": self.request_id,
            "worker": _process.pid,
        }


def _text_or_none(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


# -- the fields of a template ------------------------------------------------------------------


class _Process:
    """This process's id, read once and again after a fork (a worker logs its own)."""

    pid = os.getpid()

    @classmethod
    def forked(cls) -> None:
        cls.pid = os.getpid()


_process = _Process
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_Process.forked)


class _Clock:
    """The ``time`` and ``time_iso`` fields, rendered at most once a second."""

    second = -1
    apache = iso = ""

    @classmethod
    def now(cls) -> _Clock:
        second = int(time.time())
        if second != cls.second:
            local = time.localtime(second)
            offset = time.strftime("%z", local)
            cls.apache = time.strftime("%d/%b/%Y:%H:%M:%S ", local) + offset
            cls.iso = time.strftime("%Y-%m-%dT%H:%M:%S", local) + offset[:3] + ":" + offset[3:]
            cls.second = second
        return cls


def _or_dash(value: bytes | None) -> str:
    return "-" if not value else escape(value)


def _duration(entry: Entry) -> str:
    return "-" if entry.seconds is None else f"{entry.seconds:.6f}"


def _duration_ms(entry: Entry) -> str:
    return "-" if entry.seconds is None else f"{entry.seconds * 1000.0:.1f}"


def _query(entry: Entry) -> str:
    return _or_dash(entry.target.partition(b"?")[2])


def _request_line(entry: Entry) -> str:
    return f"{entry.method.decode('ascii')} {escape(entry.target)} HTTP/{entry.http_version}"


_FIELDS: dict[str, Callable[[Entry], str]] = {
    "client": lambda entry: format_client(entry.client),
    "client_host": lambda entry: entry.client[0] if entry.client else "-",
    "method": lambda entry: entry.method.decode("ascii"),
    "target": lambda entry: escape(entry.target),
    "path": lambda entry: escape(entry.target.partition(b"?")[0]),
    "query": _query,
    "protocol": lambda entry: "HTTP/" + entry.http_version,
    "request_line": _request_line,
    "status": lambda entry: str(entry.status),
    "bytes": lambda entry: str(entry.body_bytes),
    "duration": _duration,
    "duration_ms": _duration_ms,
    "user_agent": lambda entry: _or_dash(entry.header(b"user-agent")),
    "referer": lambda entry: _or_dash(entry.header(b"referer")),
    "host": lambda entry: _or_dash(entry.header(b"host")),
    "request_id": lambda entry: entry.request_id or "-",  # valid ids need no escaping (request_id.py)
    "worker": lambda entry: str(_process.pid),
    "time": lambda entry: _Clock.now().apache,
    "time_iso": lambda entry: _Clock.now().iso,
}


class AccessFormat:
    """A compiled ``--access-log-format``: a ``%``-style message and a function per field."""

    __slots__ = ("message", "fields")

    def __init__(self, form: str) -> None:
        message: list[str] = []
        fields: list[Callable[[Entry], str]] = []
        for literal, field in parse_access_log_format(form):
            message.append(literal.replace("%", "%%"))
            if field is not None:
                message.append("%s")
                fields.append(_FIELDS[field])
        self.message = "".join(message)
        self.fields = tuple(fields)

    def args(self, entry: Entry) -> tuple[str, ...]:
        return tuple([field(entry) for field in self.fields])

    def render(self, entry: Entry) -> str:
        return self.message % self.args(entry)


_compiled: dict[str, AccessFormat] = {}


def _compile(form: str) -> AccessFormat:
    compiled = _compiled[form] = AccessFormat(form)
    return compiled

