"""Parse one complete request head (request line + field lines) into a ``Request``.

The caller has found the end of the head; this module only judges it. The common case —
CRLF line ends, valid fields — costs one regex per request line, one ``findall`` for all
field lines and one pass over the resulting pairs. Everything slower (bare LF, explaining
exactly what is wrong) runs only when the fast path fails.
"""

from __future__ import annotations

from treadle.server.http1.fastparse import grammar
from treadle.server.http1.fastparse.events import RemoteProtocolError, Request


def crlf_terminated(text: bytes) -> bytes:
    """``text`` (every line terminated) with every line terminated by CRLF.

    RFC 9112 2.2: a recipient MAY take a bare LF as a line terminator and ignore a CR before
    it. h11 does, so we do, by normalising to CRLF — rare, so only when the counts differ.
    """
    if text.count(b"\n") == text.count(b"\r\n"):
        return text
    lines = [line[:-1] if line[-1:] == b"\r" else line for line in text.split(b"\n")[:-1]]
    return b"".join([line + b"\r\n" for line in lines])


def parse_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """All field lines of a CRLF-terminated block, as (name, value) with names as received."""
    found = grammar.field_lines(block)
    if len(found) != block.count(b"\n"):
        raise RemoteProtocolError(_explain_bad_field(block))
    return found


def parse_request_head(head: bytes) -> Request:
    """Judge a complete request head; raise ``RemoteProtocolError`` saying exactly what is wrong."""
    # Optimistically assume CRLF everywhere; a bare LF makes the request line or the field
    # count fail below, and then (only then) the head is normalised and parsed again.
    i = head.find(b"\r\n")
    match = grammar.request_line(head, 0, i)
    block = head[i + 2 :]
    found = grammar.field_lines(block)
    if match is None or len(found) != block.count(b"\n"):
        normalised = crlf_terminated(head)
        if normalised is not head:
            return parse_request_head(normalised)
        if match is None:
            raise RemoteProtocolError(_explain_bad_request_line(head[:i]))
        raise RemoteProtocolError(_explain_bad_field(block))
    method, target, version = match.groups()
    if version == b"1.1":
        http10 = False
    elif version == b"1.0":
        http10 = True
    elif version[0] == 49:  # b"1": RFC 9112 2.3, a higher minor version is answered as 1.1
        http10 = False
    else:
        raise RemoteProtocolError(f"unsupported HTTP version {version.decode()}", 505)
    headers = [(name.lower(), value) for name, value in found]

    # The framing headers are found with C-speed searches of the lowercased block: a
    # field name can only follow a line start, and no value contains a line end.
    names = b"\n" + block.lower()
    # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    # HTTP/1.1 request message that lacks a Host header field and to any request message
    # that contains more than one Host header field line".
    hosts = names.count(b"\nhost:")
    if hosts != 1:
        if hosts > 1:
            raise RemoteProtocolError("more than one Host header")
        if not http10:
            raise RemoteProtocolError("missing Host header (required in HTTP/1.1)")
    if target[0] != 47 or method == b"CONNECT":  # anything but origin-form ("/...") for a usual method
        _check_target_form(method, target)
    content_length = None
    if b"\ncontent-length:" in names:
        for name, value in headers:
            if name == b"content-length":
                content_length = _content_length(value, content_length)
        if names.count(b"\ncontent-length:") > 1 or b"," in _joined(headers, b"content-length"):
            # As h11: the valid list of identical values becomes one field with the value.
            headers = _replace(headers, b"content-length", b"%d" % content_length)
    chunked = False
    if b"\ntransfer-encoding:" in names:
        _check_transfer_encoding(_joined(headers, b"transfer-encoding"), http10, content_length)
        chunked = True
        headers = _replace(headers, b"transfer-encoding", b"chunked")  # as h11: codings are case-insensitive
    keep_alive = not http10
    if b"\nconnection:" in names:
        connection = _joined(headers, b"connection").lower()
        if connection == b"keep-alive":
            keep_alive = True
        elif connection == b"close":
            keep_alive = False
        else:
            tokens = _tokens(connection)
            keep_alive = b"close" not in tokens and (not http10 or b"keep-alive" in tokens)
    # RFC 9110 10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
    expect_continue = not http10 and b"\nexpect:" in names and b"100-continue" in _tokens(_joined(headers, b"expect"))
    te_trailers = b"\nte:" in names and b"trailers" in _joined(headers, b"te").lower()
    upgrade = _joined(headers, b"upgrade") if b"\nupgrade:" in names else None
    return Request(
        method, target, version, headers, keep_alive, content_length, chunked, expect_continue, te_trailers, upgrade
    )


def _joined(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    # RFC 9110 5.3: repeated field lines are equivalent to one line with the values joined by commas.
    return b",".join([v for n, v in headers if n == name])


def _replace(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` with the first ``name`` field set to ``value`` and any later ones dropped."""
    out = []
    seen = False
    for n, v in headers:
        if n != name:
            out.append((n, v))
        elif not seen:
            out.append((n, value))
            seen = True
    return out


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip(b" \t") for t in value.lower().split(b",")}


def _content_length(value: bytes, seen: int | None) -> int:
    # RFC 9110 8.6: Content-Length = 1*DIGIT. RFC 9112 6.3 (5): a list of identical values
    # MAY be accepted as that value (h11 does, so do we); anything else is invalid framing,
    # which a server MUST answer with 400 and a close.
    if b"," in value:
        values = {v.strip(b" \t") for v in value.split(b",")}
        if len(values) != 1:
            raise RemoteProtocolError(f"conflicting Content-Length values in {value!r}")
        value = values.pop()
    if grammar.is_digits(value) is None:
        raise RemoteProtocolError(f"invalid Content-Length {value!r}")
    length = int(value)
    if seen is not None and seen != length:
        raise RemoteProtocolError(f"conflicting Content-Length headers: {seen} and {length}")
    return length


def _check_transfer_encoding(value: bytes, http10: bool, content_length: int | None) -> None:
    # RFC 9112 6.1: "A server or client that receives an HTTP/1.0 message containing a
    # Transfer-Encoding header field MUST treat the message as if the framing is faulty".
    # (h11 accepts chunked HTTP/1.0 requests; we do not.)
    if http10:
        raise RemoteProtocolError("Transfer-Encoding in an HTTP/1.0 request")
    # RFC 9112 6.1: with both, "Such a message might indicate an attempt to perform request
    # smuggling"; a server MAY reject it and MUST close after responding. We reject.
    # (h11 lets Transfer-Encoding win.)
    if content_length is not None:
        raise RemoteProtocolError("both Content-Length and Transfer-Encoding")
    codings = [c.strip(b" \t").lower() for c in value.split(b",")]
    # RFC 9112 6.3 (4): "If a Transfer-Encoding header field is present in a request and the
    # chunked transfer coding is not the final encoding ... the server MUST respond with the
    # 400 (Bad Request) status code and then close the connection." (h11 answers 501.)
    if codings[-1] != b"chunked":
        raise RemoteProtocolError(f"Transfer-Encoding {value!r} does not end in chunked")
    if len(codings) > 1:
        # RFC 9112 7: "A sender MUST NOT apply the chunked transfer coding more than once".
        if b"chunked" in codings[:-1] or b"" in codings:
            raise RemoteProtocolError(f"invalid Transfer-Encoding {value!r}")
        # RFC 9112 6.1: a transfer coding we do not implement SHOULD get 501.
        raise RemoteProtocolError(f"unsupported transfer coding in {value!r}", 501)


def _check_target_form(method: bytes, target: bytes) -> None:
    # RFC 9112 3.2.3: for CONNECT a client "MUST send only the host and port of the tunnel
    # destination" (authority-form), and that form is used for nothing else; 3.2.4:
    # asterisk-form is "only used for a server-wide OPTIONS request"; 3.2.2: absolute-form
    # for any method. (h11 accepts any run of VCHAR; we reject a target in no valid form.)
    if method == b"CONNECT":
        if grammar.is_authority_form(target) is not None:
            return
        raise RemoteProtocolError(f"CONNECT needs an authority-form request-target (host:port), not {target!r}")
    if target == b"*":
        if method == b"OPTIONS":
            return
        raise RemoteProtocolError(f"asterisk-form request-target with method {method.decode()}")
    if grammar.is_absolute_form(target) is not None:
        return
    raise RemoteProtocolError(f"request-target {target!r} is in none of the forms of RFC 9112 3.2")


# -- error messages: run only when a head was rejected -------------------------------------


def _explain_bad_request_line(line: bytes) -> str:
    parts = line.split(b" ")
    if len(parts) != 3:
        return f"request line {line!r} is not 'method SP request-target SP HTTP-version'"
    method, target, version = parts
    if grammar.is_token(method) is None:
        return f"invalid character in method {method!r}"
    if not target or any(b < 0x21 or b > 0x7E for b in target):
        return f"invalid character in request-target {target!r}"
    return f"invalid HTTP version {version!r}"


def _explain_bad_field(block: bytes) -> str:
    for line in block.split(b"\r\n")[:-1]:
        if grammar.field_lines(line + b"\r\n"):
            continue
        if line[:1] in (b" ", b"\t"):
            # RFC 9112 5.2: obs-fold; a server MUST either reject it with 400 or unfold it.
            # We reject (h11 unfolds).
            return f"obsolete line folding (obs-fold) in field line {line!r}"
        name, colon, value = line.partition(b":")
        if not colon:
            return f"field line {line!r} has no colon"
        if name[-1:] in (b" ", b"\t"):
            # RFC 9112 5.1: "A server MUST reject ... any received request message that
            # contains whitespace between a header field name and colon with 400".
            return f"whitespace between field name and colon in {line!r}"
        if grammar.is_token(name) is None:
            return f"invalid character in field name {name!r}"
        return f"invalid character (NUL, CR, LF, VT or FF) in the value of field {name!r}: {value!r}"
    return "malformed field section"  # unreachable for a block that failed the findall
