"""The HTTP/1.1 response renderer: one response at a time, head and framing, sans I/O.

Every response an HTTP/1.1 connection sends is rendered here, whichever parser read its
request: the app's (ASGI or WSGI) through ``ResponseWriter``, the server's own error answers
through ``error_response``. It returns bytes; the connection writes them.

The framing is chosen from the request and the response, never taken from the app
(RFC 9112 6):

- no body for HEAD, 204 and 304 (6.3 (1)); body bytes passed anyway are dropped, as ASGI
  servers do, since frameworks send them for HEAD;
- ``Content-Length`` when the app gave one, enforced: a byte too many or too few raises
  ``ResponseLengthError`` before it reaches the wire;
- chunked otherwise, for HTTP/1.1 clients (an app's Transfer-Encoding is replaced), with
  trailers when the app sends them and the request said ``TE: trailers`` (7.1.2, 6.5);
- for HTTP/1.0 clients without a length, the body ends with the connection (6.3 (8)).

``Connection`` is always ours, consistent with whether the connection will be kept open.
The head is held back and goes out with the first body bytes, so a typical response
leaves in one ``write``.

Discussion — header lines an app sends on every response (content-type, cache-control...)
are checked once: the rendered line of each valid ``(name, value)`` tuple is kept, up to a
bound, so that apps sending unique values (cookies, etags) cannot grow it. The fields the
server acts on, or replaces, are not among them: their values matter per response. Only
Content-Length, which nearly every response has, is kept too, apart, with its value: a
hit gives the line and the length without checking the field again.
"""

from __future__ import annotations

import re
from enum import IntEnum
from http import HTTPStatus
from typing import Any, Iterable

from treadle.server.http1.fastparse.grammar import is_digits, is_token
from treadle.server.observe.request_id import response_field

# Reason phrases as RFC 9110 15 names them, on every Python: before 3.13, HTTPStatus still has
# RFC 7231's names for these four.
_REASONS = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_REASONS.update(
    {
        413: b"Content Too Large",
        414: b"URI Too Long",
        416: b"Range Not Satisfiable",
        422: b"Unprocessable Content",
    }
)
_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in _REASONS.items()}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

# RFC 9110 5.5: a field value must not contain CR, LF or NUL (a sender of those could split
# the response), and does not include leading or trailing whitespace: that is stripped, as
# gunicorn does (Django's WSGI handler sends Set-Cookie values with a leading space).
_bad_value = re.compile(rb"[\x00\r\n]").search

_FIELD_LINES: dict[tuple[bytes, bytes], bytes] = {}
_MAX_FIELD_LINES = 512
# Content-Length fields seen before, checked: their line and their value. Apart from the
# other lines, so that an app whose bodies vary in length cannot crowd those out.
_LENGTH_FIELDS: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
_MAX_LENGTH_FIELDS = 1024
_SERVER_SET = frozenset((b"content-length", b"transfer-encoding", b"connection", b"date", b"server"))


class Framing(IntEnum):
    """How the end of a response body is known (RFC 9112 6.3)."""

    LENGTH = 0  # Content-Length
    CHUNKED = 1  # the last chunk
    UNTIL_CLOSE = 2  # the connection closes (HTTP/1.0 without a length)
    NO_BODY = 3  # HEAD, 204, 304


_LENGTH, _CHUNKED, _UNTIL_CLOSE, _NO_BODY = Framing


class ResponseLengthError(RuntimeError):
    """The app's body disagrees with the Content-Length it declared (an app error)."""


def status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status


def check_header(header: Any) -> tuple[bytes, bytes]:
    """A response field as ``(name, value)`` bytes, its value stripped of surrounding
    whitespace; RuntimeError saying what is wrong with it otherwise."""
    try:
        name, value = header
    except (TypeError, ValueError):
        raise RuntimeError(f"Invalid ASGI header {header!r}: expected a [name, value] pair.")
    if type(name) is not bytes or type(value) is not bytes:
        raise RuntimeError(
            f"ASGI header names and values must be bytes, got {type(name).__name__} and "
            f"{type(value).__name__} in {header!r}."
        )
    if is_token(name) is None:
        raise RuntimeError(f"Invalid header name {name!r}.")
    if _bad_value(value) is not None:
        raise RuntimeError(f"Invalid header value {value!r} for header {name!r}: CR, LF and NUL are not allowed.")
    return name, value.strip(b" \t")


def informational(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A 1xx response (103 Early Hints, RFC 8297) with these fields, checked; it has no body."""
    lines = [status_line(status)]
    for header in headers:
        name, value = check_header(header)
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def error_body(status: int) -> bytes:
    """The body of the server's own short answers: ``413 Content Too Large``."""
    return b"%d %s\n" % (status, _REASONS.get(status, b"Error"))


def is_event_stream(headers: Iterable[Any]) -> bool:
    """Whether (validated) response headers say ``content-type: text/event-stream``."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lstrip().lower().startswith(b"text/event-stream")
    return False


def _length_field(header: Any, name: bytes, value: bytes) -> tuple[bytes, int]:
    """A checked Content-Length field's line and value (kept for the next response that
    has the same); RuntimeError if the value is not a length."""
    if is_digits(value) is None:
        raise RuntimeError(f"Invalid Content-Length {value!r}.")
    length = (name + b": " + value + b"\r\n", int(value))
    if len(_LENGTH_FIELDS) < _MAX_LENGTH_FIELDS and type(header) is tuple:
        _LENGTH_FIELDS[header] = length
    return length


class ResponseWriter:
    """Renders one response after another for a connection (reused: one per connection).

    ``start`` renders and holds the head; ``take_head`` gives it out, with the first ``body``
    piece; ``trailers``, ``file_start``/``file_end`` and ``end_stream`` return the bytes to
    write, the head first if it is still held; ``error`` renders the server's own answer
    instead. ``keep_alive`` says, once ``start`` has run, whether the connection may carry
    another request after this response; ``status`` and ``body_bytes`` are what an access log
    reports of it. ``request_id``, set by the connection for each request when
    ``--request-id-header`` names ``request_id_name``, is echoed in the head.
    """

    __slots__ = (
        "head",
        "framing",
        "remaining",
        "keep_alive",
        "status",
        "body_bytes",
        "headers",
        "trailers_announced",
        "_send_trailers",
        "_trailer_lines",
        "request_id",
        "request_id_name",
    )

    def __init__(self, request_id_name: bytes | None = None) -> None:
        self.head: bytes | None = None  # rendered, not yet returned for writing
        self.framing = _LENGTH
        self.remaining = 0  # body bytes the Content-Length still promises
        self.keep_alive = False
        self.status = 0
        self.body_bytes = 0  # body bytes returned for writing (what an access log reports)
        self.headers: Iterable[Any] = ()  # as the app gave them (read at shutdown)
        self.trailers_announced = False  # the app announced trailers: its body ends with them
        self._send_trailers = False  # ... and they go on the wire (chunked, TE: trailers)
        self._trailer_lines: list[bytes] = []
        self.request_id: str | None = None  # the id of the request answered (server/observe/request_id.py)
        self.request_id_name = request_id_name

    def start(
        self,
        status: int,
        headers: Iterable[Any],
        trailers: bool,
        request_http10: bool,
        request_head: bool,
        request_te_trailers: bool,
        keep_alive: bool,
        defaults: Any,
    ) -> None:
        """Validate the app's status line fields and render the head (held until the body).

        ``keep_alive``: whether the connection could stay open as far as the request and the
        server go; the app's ``Connection: close`` or close-delimited framing can only make it
        false. ``defaults(app_has_date, app_has_server)`` gives the server's field lines.
        RuntimeError if the app got a field wrong.
        """
        has_date = has_server = False
        content_length = None
        lines = [_STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
        known = _FIELD_LINES.get
        for header in headers:
            try:
                line = known(header)
                length = None if line is not None else _LENGTH_FIELDS.get(header)
            except TypeError:  # a list pair: unhashable, so checked every time
                line = length = None
            if line is not None:
                lines.append(line)
                continue
            if length is None:
                name, value = check_header(header)
                lname = name.lower()
                if lname == b"content-length":
                    length = _length_field(header, name, value)
                elif lname == b"transfer-encoding":
                    continue  # the server chooses the framing
                elif lname == b"connection":
                    if b"close" in value.lower():
                        keep_alive = False
                    continue  # replaced by our own, consistent with what we will do
                else:
                    if lname == b"date":
                        has_date = True
                    elif lname == b"server":
                        has_server = True
                    line = name + b": " + value + b"\r\n"
                    if lname not in _SERVER_SET and len(_FIELD_LINES) < _MAX_FIELD_LINES and type(header) is tuple:
                        _FIELD_LINES[header] = line
                    lines.append(line)
                    continue
            # Content-Length, given more than once: the same value each time, sent once.
            if content_length is not None:
                if length[1] != content_length:
                    raise RuntimeError("Conflicting Content-Length headers.")
                continue
            content_length = length[1]
            lines.append(length[0])

        if request_head or status == 204 or status == 304:
            framing = _NO_BODY
        elif content_length is not None:
            framing = _LENGTH
            self.remaining = content_length
        elif not request_http10:
            framing = _CHUNKED
            lines.append(b"transfer-encoding: chunked\r\n")
        else:
            framing = _UNTIL_CLOSE
            keep_alive = False
        if not keep_alive:
            lines.append(b"connection: close\r\n")
        elif request_http10:
            lines.append(b"connection: keep-alive\r\n")
        lines.append(defaults(has_date, has_server))
        if self.request_id is not None:
            lines.append(self._request_id_line(headers))
        lines.append(b"\r\n")
        self.framing = framing
        self.keep_alive = keep_alive
        self.trailers_announced = trailers
        self._send_trailers = trailers and framing == _CHUNKED and request_te_trailers
        self._trailer_lines = []
        self.status = status
        self.body_bytes = 0
        self.headers = headers
        self.head = b"".join(lines)

    def error(self, status: int, head_request: bool, defaults: bytes) -> bytes:
        """The server's own short plain-text answer (400, 413, 500, 503...) after which the
        connection closes; ``defaults``: the server's field lines (Date, Server, ``--header``)."""
        body = error_body(status)
        head = b"".join(
            (
                status_line(status),
                b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                defaults,
                b"" if self.request_id is None else self._request_id_line(()),
                b"\r\n",
            )
        )
        self.head = None
        self.status = status
        self.keep_alive = False
        if head_request:
            self.body_bytes = 0
            return head
        self.body_bytes = len(body)
        return head + body

    def body(self, data: bytes, more_body: bool) -> bytes:
        """A piece of body, framed (the held head is not in it: ``take_head``); with
        ``more_body`` false and no trailers announced, the end of the body too.

        The head is taken apart so that a large body is never copied behind it: the
        connection writes the two together (server/http1/timers.py ``_write``)."""
        framing = self.framing
        if framing == _CHUNKED:
            out = b"".join((b"%x\r\n" % len(data), data, b"\r\n")) if data else b""
            if not more_body and not self.trailers_announced:
                out += LAST_CHUNK
        elif framing == _LENGTH:
            remaining = self.remaining - len(data)
            if remaining < 0:
                raise ResponseLengthError(f"Response content longer than Content-Length by {-remaining} bytes.")
            if not more_body and remaining:
                raise ResponseLengthError(f"Response content shorter than Content-Length by {remaining} bytes.")
            self.remaining = remaining
            out = data
        elif framing == _NO_BODY:
            return b""
        else:
            out = data
        self.body_bytes += len(data)
        return out

    def trailers(self, headers: Iterable[Any], more_trailers: bool) -> bytes:
        """Trailer fields (checked, and kept if they can be sent); once the last of them is
        given, the end of the body. RuntimeError for an invalid field."""
        for header in headers:
            name, value = check_header(header)
            if self._send_trailers:
                self._trailer_lines.append(name + b": " + value + b"\r\n")
        if more_trailers:
            return b""
        out = self.take_head()
        if self.framing == _CHUNKED:
            out += b"0\r\n" + b"".join(self._trailer_lines) + b"\r\n"
        return out

    def file_start(self, count: int) -> bytes:
        """What goes before ``count`` bytes of a file sent as body (the held head; a chunk's
        size line). ResponseLengthError if the Content-Length has no room for them."""
        framing = self.framing
        if framing == _LENGTH:
            if count > self.remaining:
                raise ResponseLengthError(
                    f"Response content longer than Content-Length by {count - self.remaining} bytes."
                )
            self.remaining -= count
        out = self.take_head()
        if framing == _CHUNKED and count:
            out += b"%x\r\n" % count
        return out

    def file_end(self, sent: int) -> bytes:
        """What follows the file's ``sent`` bytes (a chunk's CRLF)."""
        self.body_bytes += sent
        return b"\r\n" if self.framing == _CHUNKED else b""

    def end_stream(self) -> bytes:
        """The end of a body the server cuts off on purpose (an event stream at shutdown):
        the held head and the last chunk. Other framings cannot end early: nothing to add."""
        out = self.take_head()
        if self.framing == _CHUNKED:
            out += LAST_CHUNK
        return out

    def _request_id_line(self, app_headers: Iterable[Any]) -> bytes:
        field = response_field(self.request_id_name, self.request_id, app_headers)
        return b"" if field is None else field[0] + b": " + field[1] + b"\r\n"

    def take_head(self) -> bytes:
        """The head, if it is still held (once: b"" afterwards)."""
        head = self.head
        if head is None:
            return b""
        self.head = None
        return head
