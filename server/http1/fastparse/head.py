"""Parse one complete request head (request line + field lines) into a ``Request``.

The caller has found the end of the head; this module only judges it. The common case —
CRLF line ends, valid fields — costs one regex per request line, one ``findall`` for all
field lines and one pass over the resulting pairs. Everything slower (bare LF, explaining
exactly what is wrong) runs only when the fast path fails.
"""

from __future__ import annotations

from treadle.server.http1.fastparse import grammar
from treadle.server.http1.fastparse.events import RemoteProtocolError, Request
from treadle.server.http1.fastparse.limits import Limits

# Discussion — the Host check: a regex call costs more than all the rest of judge_request, and
# a server hears the same few Host values again and again (every request of a connection names
# one). So a value found valid is remembered, and the regex runs once per new value. Bounded:
# at most 64 values of at most 255 bytes (a DNS name's limit); when full, it starts over.
_valid_hosts: set[bytes] = set()
_VALID_HOSTS_KEPT = 64
_VALID_HOST_KEPT_SIZE = 255


def crlf_terminated(text: bytes) -> bytes:
    """``text`` (every line terminated) with every line terminated by CRLF.

    RFC 9112 2.2: a recipient MAY take a bare LF as a line terminator and ignore a CR before
    it. h11 does, so we do, by normalising to CRLF — rare, so only when the counts differ.
    """
    if text.count(b"\n") == text.count(b"\r\n"):
        return text
    lines = [line[:-1] if line[-1:] == b"\r" else line for line in text.split(b"\n")[:-1]]
    return b"".join([line + b"\r\n" for line in lines])


def parse_fields(block: bytes, bare_lf: bool) -> list[tuple[bytes, bytes]]:
    """All field lines of a block (each line terminated), as (name, value) with names as
    received; bare LF line ends taken only if ``bare_lf``."""
    found = grammar.field_lines(block)
    if len(found) != block.count(b"\n"):
        normalised = crlf_terminated(block)
        if normalised is not block:
            if not bare_lf:
                raise bare_lf_refused()
            return parse_fields(normalised, bare_lf)
        raise RemoteProtocolError(_explain_bad_field(block))
    return found


# RFC 9112 5.2: "A server that receives an obs-fold in a request message ... MUST either reject
# the message by sending a 400 (Bad Request) ... or replace each received obs-fold with one or
# more SP octets". We reject (h11 unfolds; the h11 engine rejects too: split_head).
OBS_FOLD = "obsolete line folding (obs-fold), a field line starting with whitespace"


def bare_lf_refused() -> RemoteProtocolError:
    # RFC 9112 2.2 lets a recipient take a bare LF as a line end (MAY); a proxy in front that
    # does not reads different fields from the same bytes, which is how requests are
    # smuggled. Refused unless --accept-bare-lf (docs/server.md has the evidence).
    return RemoteProtocolError("bare LF line end (RFC 9112 2.2: the line terminator is CRLF)")


def split_head(received: bytes, bare_lf: bool, limit: int) -> bytes:
    """The complete head at the start of ``received`` (its empty line included), held to the
    size ``limit`` (first, as the fast engine checks it) and to the rules on line ends that
    another parser does not apply (h11 takes a bare LF and unfolds obs-fold)."""
    match = grammar.end_of_head(received)
    assert match is not None  # the other parser has found the head's end
    end = match.end()
    if end > limit:
        raise head_too_large(received, 0, limit)
    head = received[:end]
    if not bare_lf and head.count(b"\n") != head.count(b"\r\n"):
        raise bare_lf_refused()
    if grammar.has_obs_fold(head) is not None:
        raise RemoteProtocolError(OBS_FOLD)
    return head


def head_too_large(buf: bytes, pos: int, limit: int) -> RemoteProtocolError:
    """The error for a head (from ``buf[pos]``, complete or not) longer than ``limit``."""
    if buf.find(b"\n", pos, pos + limit) < 0:
        # RFC 9112 3: "A server that receives a request-target longer than any URI it wishes
        # to parse MUST respond with a 414 (URI Too Long) status code".
        return RemoteProtocolError(f"request line longer than {limit} bytes", 414)
    return RemoteProtocolError(f"request head longer than {limit} bytes", 431)


def parse_request_head(head: bytes, limits: Limits) -> Request:
    """Judge a complete request head (each line terminated; the empty line after it is not
    included); raise ``RemoteProtocolError`` saying exactly what is wrong."""
    # Optimistically assume CRLF everywhere; a bare LF makes the request line or the field
    # count fail below, and then (only then) it is refused, or the head is normalised and
    # parsed again.
    i = head.find(b"\r\n")
    match = grammar.request_line(head, 0, i)
    block = head[i + 2 :]
    found = grammar.field_lines(block)
    if match is None or len(found) != block.count(b"\n"):
        normalised = crlf_terminated(head)
        if normalised is not head:
            if not limits.bare_lf:
                raise bare_lf_refused()
            return parse_request_head(normalised, limits)
        if match is None:
            raise RemoteProtocolError(_explain_bad_request_line(head[:i]))
        raise RemoteProtocolError(_explain_bad_field(block))
    method, target, version = match.groups()
    headers = [(name.lower(), value) for name, value in found]
    # The framing headers are found with C-speed searches of the lowercased block: a
    # field name can only follow a line start, and no value contains a line end.
    return judge_request(method, target, version, headers, b"\n" + block.lower(), limits)


def judge_request(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: list[tuple[bytes, bytes]],
    names: bytes,
    limits: Limits,
) -> Request:
    """The ``Request`` for a head whose lines are valid, once the rules on its parts hold.

    ``headers`` are (lowercased name, value); ``names`` has each field name lowercased after
    a ``\\n`` and followed by ``:`` (what ``names.count(b"\\nhost:")`` counts). Both engines
    end here, so they agree on every rule — and on which comes first when a request breaks
    several: h11 checks Content-Length and the Host count while it parses, so those come
    first; then the ones answered with other statuses than 400, in a fixed order.
    """
    http10 = version == b"1.0"
    # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    # HTTP/1.1 request message that lacks a Host header field and to any request message
    # that contains more than one Host header field line or a Host header field with an
    # invalid field value."
    hosts = names.count(b"\nhost:")
    if hosts > 1:
        raise RemoteProtocolError("more than one Host header")
    content_length = None
    if b"\ncontent-length:" in names:
        for name, value in headers:
            if name == b"content-length":
                content_length = _content_length(value, content_length)
        if names.count(b"\ncontent-length:") > 1 or b"," in _joined(headers, b"content-length"):
            # As h11: the valid list of identical values becomes one field with the value.
            headers = _replace(headers, b"content-length", b"%d" % content_length)
    if hosts:
        host = b""
        for name, value in headers:  # (Host usually comes first)
            if name == b"host":
                host = value
                break
        if host not in _valid_hosts:
            if grammar.is_host(host) is None:
                raise RemoteProtocolError(f"invalid Host {host!r} (RFC 9110 7.2: uri-host [ \":\" port ])")
            if len(_valid_hosts) >= _VALID_HOSTS_KEPT:
                _valid_hosts.clear()
            if len(host) <= _VALID_HOST_KEPT_SIZE:
                _valid_hosts.add(host)
    elif not http10 and version[0] == 49:  # b"1": a higher 1.x minor version is HTTP/1.1 to us
        raise RemoteProtocolError("missing Host header (required in HTTP/1.1)")
    # The rules h11 leaves to its caller, in a fixed order.
    if version[0] != 49:
        raise RemoteProtocolError(f"unsupported HTTP version {version.decode()}", 505)  # RFC 9112 2.3
    if len(headers) > limits.fields:
        raise RemoteProtocolError(f"more than {limits.fields} header fields", 431)
    if target[0] != 47 or method == b"CONNECT":  # anything but origin-form ("/...") for a usual method
        authority = _check_target_form(method, target)
        if authority is not None:
            # RFC 9112 3.2.2: "When an origin server receives a request with an absolute-form
            # of request-target, the origin server MUST ignore the received Host header field
            # (if any) and instead use the host information of the request-target."
            headers = _replace(headers, b"host", authority) if hosts else headers + [(b"host", authority)]
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


def _check_target_form(method: bytes, target: bytes) -> bytes | None:
    """Refuse a request-target in none of the forms its method allows; the authority of an
    absolute-form target (None for the other forms)."""
    # RFC 9112 3.2.3: for CONNECT a client "MUST send only the host and port of the tunnel
    # destination" (authority-form), and that form is used for nothing else; 3.2.4:
    # asterisk-form is "only used for a server-wide OPTIONS request"; 3.2.2: absolute-form
    # for any method. (h11 accepts any run of VCHAR; we reject a target in no valid form.)
    if method == b"CONNECT":
        if grammar.is_authority_form(target) is not None:
            return None
        raise RemoteProtocolError(f"CONNECT needs an authority-form request-target (host:port), not {target!r}")
    if target == b"*":
        if method == b"OPTIONS":
            return None
        raise RemoteProtocolError(f"asterisk-form request-target with method {method.decode()}")
    match = grammar.absolute_form(target)
    if match is None:
        raise RemoteProtocolError(f"request-target {target!r} is in none of the forms of RFC 9112 3.2")
    authority = match.group(1)
    if b"@" in authority:
        # RFC 9110 4.2.4: "a recipient SHOULD parse for userinfo and treat its presence as an error".
        raise RemoteProtocolError(f"userinfo in the request-target {target!r}")
    # RFC 9110 4.2.1: "A recipient that processes such a URI reference [with an empty host]
    # MUST reject it as invalid."
    if grammar.is_host(authority) is None or authority[:1] in (b"", b":"):
        raise RemoteProtocolError(f"invalid host in the request-target {target!r}")
    return authority


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
            return f"{OBS_FOLD}: {line!r}"
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
