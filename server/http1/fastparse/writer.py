"""Serialising the response: status line, fields, and the body framing RFC 9112 6 requires.

The framing is chosen from the request and the response, never taken from the caller:

- no body for HEAD, 204 and 304 (RFC 9112 6.3 (1)); body bytes passed anyway are dropped,
  as ASGI servers do, since frameworks send them for HEAD;
- ``Content-Length`` when the caller gave one, enforced: a byte too many or too few raises
  before it reaches the wire;
- chunked otherwise, for HTTP/1.1 clients (a caller's Transfer-Encoding is replaced);
- for HTTP/1.0 clients without a length, the body ends with the connection (RFC 9112 6.3 (8)).

``Connection`` is always ours, consistent with whether we will keep the connection open.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Iterable

from treadle.server.http1.fastparse import grammar
from treadle.server.http1.fastparse.events import LocalProtocolError, Request

IDLE, BODY, DONE = 0, 1, 2
_LENGTH, _CHUNKED, _UNTIL_CLOSE, _NO_BODY = range(4)

STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("ascii")) for s in HTTPStatus}
# RFC 9110 5.5: a value must not contain CR, LF or NUL, nor start or end with whitespace.
_bad_value = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$").search


def status_line(status: int) -> bytes:
    return STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status


class ResponseWriter:
    """The sending half of ``ServerConnection``: per request, one response, framed correctly."""

    def __init__(self) -> None:
        self.our_state = IDLE
        self.keep_alive = True  # for this exchange; false once either side asked to close
        self.http10 = False
        self.head_request = False
        self.they_are_waiting_for_100_continue = False
        self._framing = _LENGTH
        self._remaining = 0

    def _on_request(self, request: Request) -> None:
        self.keep_alive = request.keep_alive
        self.http10 = request.http_version == b"1.0"
        self.head_request = request.method == b"HEAD"
        self.they_are_waiting_for_100_continue = request.expect_continue

    def send_response(self, status: int, headers: Iterable[tuple[bytes, bytes]], extra: bytes = b"") -> bytes:
        """The head of a response; ``extra`` is pre-rendered field lines (Date, Server) to add."""
        if self.our_state != IDLE:
            raise LocalProtocolError("a response was already started for this request")
        if status < 200:
            if not 100 <= status < 200 or status == 101:
                raise LocalProtocolError(f"cannot send status {status} (101 needs an upgrade handler)")
            if status == 100:
                self.they_are_waiting_for_100_continue = False
            return b"".join([status_line(status), *[_field(n, v) for n, v in headers], b"\r\n"])
        lines = [status_line(status)]
        content_length = None
        keep_alive = self.keep_alive
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-length":
                if grammar.is_digits(value) is None:
                    raise LocalProtocolError(f"invalid Content-Length {value!r}")
                if content_length is not None:
                    if int(value) != content_length:
                        raise LocalProtocolError("conflicting Content-Length headers")
                    continue
                content_length = int(value)
            elif lname == b"transfer-encoding":
                continue
            elif lname == b"connection":
                if b"close" in value.lower():
                    keep_alive = False
                continue
            lines.append(_field(name, value))
        if self.head_request or status == 204 or status == 304:
            self._framing = _NO_BODY
        elif content_length is not None:
            self._framing = _LENGTH
            self._remaining = content_length
        elif not self.http10:
            self._framing = _CHUNKED
            lines.append(b"transfer-encoding: chunked\r\n")
        else:
            self._framing = _UNTIL_CLOSE
            keep_alive = False
        if self.they_are_waiting_for_100_continue:
            # RFC 9110 10.1.1: the client may or may not send the body it was not asked
            # for; closing is the only way to know where the next request starts.
            keep_alive = False
        if not keep_alive:
            lines.append(b"connection: close\r\n")
        elif self.http10:
            lines.append(b"connection: keep-alive\r\n")
        lines.append(extra)
        lines.append(b"\r\n")
        self.keep_alive = keep_alive
        self.our_state = BODY
        return b"".join(lines)

    def send_data(self, data: bytes) -> bytes:
        """One piece of response body, framed."""
        if self.our_state != BODY:
            raise LocalProtocolError("send_data() outside a response body")
        framing = self._framing
        if framing == _CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        if framing == _LENGTH:
            remaining = self._remaining - len(data)
            if remaining < 0:
                raise LocalProtocolError(f"response body longer than Content-Length by {-remaining} bytes")
            self._remaining = remaining
            return data
        return b"" if framing == _NO_BODY else data

    def send_end(self, trailers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """End the response; trailer fields are sent only with chunked framing (RFC 9112 7.1.2)."""
        if self.our_state != BODY:
            raise LocalProtocolError("send_end() outside a response body")
        framing = self._framing
        if framing == _LENGTH and self._remaining:
            raise LocalProtocolError(f"response body shorter than Content-Length by {self._remaining} bytes")
        self.our_state = DONE
        if framing == _CHUNKED:
            return b"".join([b"0\r\n", *[_field(n, v) for n, v in trailers], b"\r\n"])
        return b""


def _field(name: bytes, value: bytes) -> bytes:
    if grammar.is_token(name) is None:
        raise LocalProtocolError(f"invalid field name {name!r}")
    if _bad_value(value) is not None:
        raise LocalProtocolError(f"invalid value {value!r} for field {name!r}")
    return name + b": " + value + b"\r\n"
