"""Every rule a request is held to, on both engines (``--http fast`` and ``--http h11``), at the
parser: one case per rule, the RFC clause next to it, and the status the server answers.

Each input is fed whole and byte by byte; both must end the same way. The message is checked
where the rule is the server's own (both engines raise the same words); where h11 refuses a
request itself its words differ, so only the status is. Served over real sockets, the same
rules are in test_http_rfc9112.py; the engines are compared on generated input in
test_fastparse_differential.py.
"""

from __future__ import annotations

import pytest
from fastparse_harness import Outcome, by_byte, run_engine

from treadle.server.config import Config
from treadle.server.http1.fastparse import DEFAULT_LIMITS, Limits
from treadle.server.http1.parsers import parser_limits

HOST = b"Host: example.com\r\n"
POST = b"POST / HTTP/1.1\r\n" + HOST
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(params=["fast", "h11"])
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def outcome(engine: str, raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """What ``engine`` makes of ``raw`` — the same whether it comes whole or byte by byte."""
    whole = run_engine(engine, [raw], limits)
    bytewise = run_engine(engine, by_byte(raw), limits)
    assert (whole.requests, whole.end, whole.status) == (bytewise.requests, bytewise.end, bytewise.status)
    return whole


def refused(engine: str, raw: bytes, status: int, message: str, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """``raw`` refused with ``status``, saying ``message`` (a message starting with "~" is
    the fast engine's: the h11 engine refuses that request with h11's own words)."""
    out = outcome(engine, raw, limits)
    assert (out.end, out.status) == ("error", status), out
    if not (engine == "h11" and message.startswith("~")):
        assert message.lstrip("~") in out.error, out
    return out

REFUSED = [
    # RFC 9112 6.3 (5) / RFC 9110 8.6: Content-Length = 1*DIGIT, one value
    (POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "~conflicting"),
    (POST + b"Content-Length: 1,2\r\n\r\n", 400, "~conflicting"),
    (POST + b"Content-Length: -1\r\n\r\n", 400, "~invalid Content-Length"),
    (POST + b"Content-Length: 1e3\r\n\r\n", 400, "~invalid Content-Length"),
    (POST + b"Content-Length: " + b"9" * 21 + b"\r\n\r\n", 400, "~invalid Content-Length"),
    # RFC 9112 6.3 (4): "If a Transfer-Encoding header field is present in a request and the
    # chunked transfer coding is not the final encoding, the message body length cannot be
    # determined reliably; the server MUST respond with the 400 (Bad Request) status code".
    # (h11 answers 501 to all of these; the h11 engine judges them as the fast one.)
    (POST + b"Transfer-Encoding: gzip\r\n\r\n", 400, "does not end in chunked"),
    (POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400, "does not end in chunked"),
    (POST + b"Transfer-Encoding: \r\n\r\n", 400, "does not end in chunked"),
    (POST + b"Transfer-Encoding: ,chunked\r\n\r\n", 400, "invalid Transfer-Encoding"),
    (POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "invalid Transfer-Encoding"),
    # RFC 9112 7: "A sender MUST NOT apply the chunked transfer coding more than once"
    (POST + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "invalid Transfer"),
    # RFC 9112 6.1: "A server that receives a request message with a transfer coding it does not
    # understand SHOULD respond with 501 (Not Implemented)."
    (POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported"),
    # RFC 9112 6.1: "A server or client that receives an HTTP/1.0 message containing a
    # Transfer-Encoding header field MUST treat the message as if the framing is faulty"
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
    # RFC 9112 6.1: both framings "ought to be handled as an error"; the server closes after.
    (POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
    (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both"),
    # RFC 9112 5.1: "A server MUST reject, with a response status code of 400 (Bad Request), any
    # received request message that contains whitespace between a header field name and colon."
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-A : b\r\n\r\n", 400, "~whitespace between field name and colon"),
    # RFC 9112 5.2: obs-fold: "MUST either reject the message by sending a 400 (Bad Request) ...
    # or replace each received obs-fold with one or more SP octets". Both engines reject.
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\n  b\r\n\r\n", 400, "obs-fold"),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\r\n\tb\r\n\r\n", 400, "obs-fold"),
    (CHUNKED + b"0\r\nX-A: a\r\n b\r\n\r\n", 400, "obs-fold"),  # in the trailers too
    # RFC 9110 5.1 / 5.5: field-name = token; "Field values containing CR, LF, or NUL
    # characters are invalid and dangerous"
    (b"GET / HTTP/1.1\r\n" + HOST + b"X(A): b\r\n\r\n", 400, "~invalid character in field name"),
    (b"GET / HTTP/1.1\r\n" + HOST + b": b\r\n\r\n", 400, "~invalid character in field name"),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-A b\r\n\r\n", 400, "~no colon"),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", 400, "~NUL, CR, LF"),
    (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n", 400, "~NUL, CR, LF"),
    # RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
    # request message that lacks a Host header field and to any request message that contains
    # more than one Host header field line or a Host header field with an invalid field value."
    (b"GET / HTTP/1.1\r\n\r\n", 400, "~missing Host"),
    (b"GET / HTTP/1.2\r\n\r\n", 400, "missing Host"),  # a higher 1.x is HTTP/1.1 to us
    (b"GET / HTTP/1.1\r\n" + HOST + HOST + b"\r\n", 400, "~more than one Host"),
    (b"GET / HTTP/1.0\r\n" + HOST + HOST + b"\r\n", 400, "~more than one Host"),
    # ... and RFC 9110 7.2: Host = uri-host [ ":" port ] (RFC 3986 3.2.2, 3.2.3)
    (b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", 400, "invalid Host"),  # userinfo
    (b"GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n", 400, "invalid Host"),  # a list
    (b"GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400, "invalid Host"),  # whitespace inside
    (b"GET / HTTP/1.1\r\nHost: exa\x01mple.com\r\n\r\n", 400, "invalid Host"),  # a control character
    (b"GET / HTTP/1.1\r\nHost: example.com:80x\r\n\r\n", 400, "invalid Host"),  # a port not digits
    (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "invalid Host"),
    (b"GET / HTTP/1.1\r\nHost: %zz\r\n\r\n", 400, "invalid Host"),  # pct-encoded = "%" HEXDIG HEXDIG
    (b"GET / HTTP/1.0\r\nHost: a@b\r\n\r\n", 400, "invalid Host"),  # "any request message"
    # RFC 9112 3 and 2.3: the request line
    (b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "~invalid character in method"),
    (b"GET /a\x7f HTTP/1.1\r\n" + HOST + b"\r\n", 400, "~invalid character in request-target"),
    (b"GET / HTTP/1.1 \r\n" + HOST + b"\r\n", 400, "~is not 'method SP"),
    (b"GET / HTTP/x\r\n" + HOST + b"\r\n", 400, "~invalid HTTP version"),
    (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", 505, "unsupported HTTP version 2.0"),
    (b"\r\nGET / HTTP/1.1\r\n" + HOST + b"\r\n", 400, "~does not start with a method"),
    (b"\x16\x03\x01\x02\x00\x01", 400, "~does not start with a method"),  # TLS on the plain port
    # RFC 9112 3.2: the four forms of request-target. 3.2.1: origin-form = absolute-path
    # [ "?" query ], which starts with "/"; 3.2.4: asterisk-form "is only used for a
    # server-wide OPTIONS request"; 3.2.3: authority-form "is only used for CONNECT requests",
    # and CONNECT takes nothing else; 3.2.2: absolute-form, whose authority must be a host
    # (RFC 9110 4.2.1: a URI "with an empty host identifier ... MUST [be rejected] as
    # invalid"; 4.2.4: "treat [userinfo's] presence as an error").
    (b"GET a/b HTTP/1.1\r\n" + HOST + b"\r\n", 400, "none of the forms"),
    (b"GET * HTTP/1.1\r\n" + HOST + b"\r\n", 400, "asterisk-form"),
    (b"GET example.com:80 HTTP/1.1\r\n" + HOST + b"\r\n", 400, "none of the forms"),
    (b"CONNECT /x HTTP/1.1\r\n" + HOST + b"\r\n", 400, "authority-form"),
    (b"GET http://user@example.com/ HTTP/1.1\r\n" + HOST + b"\r\n", 400, "userinfo"),
    (b"GET http:///x HTTP/1.1\r\n" + HOST + b"\r\n", 400, "invalid host in the request-target"),
    (b"GET http://a b/ HTTP/1.1\r\n" + HOST + b"\r\n", 400, "~is not 'method SP"),
    # RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; 7.1.1: chunk-ext =
    # *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), name a token, value a
    # token or quoted-string: nothing else on the line, no whitespace before the CRLF.
    (CHUNKED + b"z\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"-1\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1" * 21 + b"\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1 \r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1\t\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1;a \r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1;a=b \r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1;a=\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1;=b\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1;\r\n", 400, "invalid chunk size"),
    (CHUNKED + b"1;a\x00\r\n", 400, "invalid chunk size"),  # no NUL
    (CHUNKED + b'1;a="x\ry"\r\n', 400, "invalid chunk size"),  # no bare CR, even quoted
    (CHUNKED + b"1;a\rb\r\n", 400, "invalid chunk size"),
    (CHUNKED + b'1;a="x\r\n', 400, "invalid chunk size"),  # an unterminated quoted-string
    (CHUNKED + b"1\na\r\n0\r\n\r\n", 400, "invalid chunk size"),  # chunk lines end in CRLF
    (CHUNKED + b"8000000000000000\r\n", 400, "larger than any body"),  # 2**63
    # RFC 9112 7.1: chunk-data CRLF (h11 before 0.16 took any two bytes: CVE-2025-43859)
    (CHUNKED + b"1\r\naX", 400, "~not followed by CRLF"),
    (CHUNKED + b"1\r\na\n", 400, "~not followed by CRLF"),
    (CHUNKED + b"1\r\na\r\r\n0\r\n\r\n", 400, "~not followed by CRLF"),
    # RFC 9112 2.2: "the line terminator for the start-line and fields is the sequence CRLF";
    # a recipient MAY take a bare LF. Refused by default (--accept-bare-lf takes it).
    (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"),  # the empty line that ends the head
    (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF"),
    (CHUNKED + b"0\r\nX: y\n\r\n", 400, "bare LF"),  # in the trailers
    (CHUNKED + b"0\r\n\n", 400, "bare LF"),
    # Truncation: the client closed mid-message
    (b"GET / HTTP/1.1\r\nHo", 400, "~middle of a request head"),
    (POST + b"Content-Length: 5\r\n\r\nab", 400, "~3 bytes of body still expected"),
    (CHUNKED + b"5\r\nab", 400, "~chunked body"),
    (CHUNKED + b"0\r\nX: y\r\n", 400, "~trailers"),
    # When a request breaks several rules, both engines name the same one first: Host and
    # Content-Length (which h11 checks as it parses), then the version, the field count, the
    # target, Transfer-Encoding.
    (b"GET / HTTP/2.0\r\nHost: a@b\r\n\r\n", 400, "invalid Host"),
    (POST + b"Transfer-Encoding: gzip\r\nContent-Length: 1,2\r\n\r\n", 400, "~conflicting"),  # h11: TE (501) first
    (b"POST / HTTP/2.0\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 505, "unsupported HTTP version"),
    (b"POST * HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "asterisk-form"),
    (b"POST / HTTP/1.1\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "bare LF"),
]


@pytest.mark.parametrize("raw,status,message", REFUSED)
def test_refused(engine: str, raw: bytes, status: int, message: str) -> None:
    refused(engine, raw, status, message)


def test_a_fast_refusal_leaves_the_parser_refusing() -> None:
    out = run_engine("fast", [b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"])
    assert out.status == 400 and out.requests == []


# -- limits: each with the status it is answered with ------------------------------------------


def test_head_limit_applies_to_whole_and_split_heads_alike(engine: str) -> None:
    raw = b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 200 + b"\r\n\r\n"
    # 431 however the head arrives (h11 alone would let a whole one through).
    refused(engine, raw, 431, "longer than 128", Limits(head_size=128))
    assert outcome(engine, raw, Limits(head_size=len(raw))).end == "closed"  # exactly at the limit


def test_overlong_request_line_is_414(engine: str) -> None:
    # RFC 9112 3: "A server that receives a request-target longer than any URI it wishes to
    # parse MUST respond with a 414 (URI Too Long) status code".
    refused(engine, b"GET /" + b"a" * 300, 414, "request line longer", Limits(head_size=128))
    refused(engine, b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414, "request line longer", Limits(head_size=128))


def test_trailers_are_bounded_by_the_head_limit(engine: str) -> None:
    limits = Limits(head_size=128)
    refused(engine, CHUNKED + b"0\r\nX: " + b"a" * 200, 431, "trailer section longer", limits)
    refused(engine, CHUNKED + b"0\r\nX: " + b"a" * 200 + b"\r\n\r\n", 431, "trailer section longer", limits)


def test_field_count_limit_is_431(engine: str) -> None:
    # gunicorn's limit_request_fields: a head of many small fields costs per field, not per byte.
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(3))
    limits = Limits(fields=4)
    assert outcome(engine, b"GET / HTTP/1.1\r\n" + HOST + fields + b"\r\n", limits).end == "closed"
    raw = b"GET / HTTP/1.1\r\n" + HOST + fields + b"X-3: v\r\n\r\n"
    refused(engine, raw, 431, "more than 4 header fields", limits)


def test_chunk_extensions_are_bounded_per_chunk(engine: str) -> None:
    # RFC 9112 7.1.1: "A server ought to limit the total length of chunk extensions received in
    # a request to an amount reasonable for the services provided ... and generate an
    # appropriate 4xx (Client Error) response if that amount is exceeded." 413, as Node.
    limits = Limits(chunk_extension_size=16)
    ok = CHUNKED + b"1;a=" + b"b" * 13 + b"\r\nx\r\n0\r\n\r\n"  # 16 bytes after the size
    assert outcome(engine, ok, limits).requests[0][4] == b"x"
    refused(engine, CHUNKED + b"1;a=" + b"b" * 14 + b"\r\nx\r\n", 413, "17 bytes of chunk extensions", limits)
    # Not waiting for the CRLF of a line already too long to be valid:
    refused(engine, CHUNKED + b"1;a=" + b"b" * 100, 413, "more than 16 bytes of chunk extensions", limits)
    refused(engine, CHUNKED + b"1" * 100, 400, "invalid chunk size line", limits)


def test_chunk_extensions_are_bounded_per_body(engine: str) -> None:
    # Go CVE-2023-39326 / Node CVE-2024-22019: small extensions on many one-byte chunks.
    limits = Limits(chunk_extension_total=40)
    chunk = b"1;name=value\r\nx\r\n"  # 11 bytes of extensions
    assert outcome(engine, CHUNKED + chunk * 3 + b"0\r\n\r\n", limits).end == "closed"
    refused(engine, CHUNKED + chunk * 4, 413, "44 bytes of chunk extensions in one body", limits)
    refused(engine, CHUNKED + chunk * 3 + b"0;name=value\r\n\r\n", 413, "in one body", limits)  # the last chunk's too


def test_a_chunk_over_the_body_limit_is_refused_at_its_size_line(engine: str) -> None:
    limits = Limits(body_size=10)
    assert outcome(engine, CHUNKED + b"a\r\n" + b"x" * 10 + b"\r\n0\r\n\r\n", limits).end == "closed"
    # 413 as soon as the size is read: none of the chunk's data has to arrive.
    out = refused(engine, CHUNKED + b"b\r\n", 413, "chunked body longer than 10 bytes", limits)
    assert out.requests == []
    refused(engine, CHUNKED + b"6\r\nxxxxxx\r\n5\r\n", 413, "longer than 10", limits)  # the sum counts


@pytest.mark.parametrize(
    "option,value",
    [("limit_request_fields", 0), ("limit_chunk_extension_size", -1), ("limit_chunk_extension_total", -1)],
)
def test_limits_that_cannot_work_are_refused(option: str, value: int) -> None:
    with pytest.raises(ValueError, match=option):
        Config(None, **{option: value})


def test_the_limits_default_to_the_servers_options() -> None:
    # The same defaults, but for the body: the parser alone sets none, the server 100 MiB.
    config = Config(None)
    assert parser_limits(config) == DEFAULT_LIMITS._replace(body_size=config.limit_request_body_size)


# -- accepted: the same request from both engines ----------------------------------------------


def test_absolute_form_takes_its_host_from_the_target(engine: str) -> None:
    # RFC 9112 3.2.2: "When an origin server receives a request with an absolute-form of
    # request-target, the origin server MUST ignore the received Host header field (if any)
    # and instead use the host information of the request-target."
    out = outcome(engine, b"GET http://example.org:8080/a?b HTTP/1.1\r\nHost: other\r\nX: y\r\n\r\n")
    (method, target, version, headers, *_rest) = out.requests[0]
    assert (target, headers) == (b"http://example.org:8080/a?b", [(b"host", b"example.org:8080"), (b"x", b"y")])
    out = outcome(engine, b"GET http://example.org/ HTTP/1.0\r\n\r\n")  # HTTP/1.0 needs no Host: one is added
    assert out.requests[0][3] == [(b"host", b"example.org")]


@pytest.mark.parametrize(
    "host",
    [b"example.com", b"example.com:8080", b"10.0.0.1:80", b"[::1]", b"[2001:db8::1]:443", b"[v7.x:y]", b"", b"a:"],
)
def test_valid_hosts(engine: str, host: bytes) -> None:
    # RFC 9110 7.2: an empty Host is what a client sends for a target without an authority;
    # RFC 3986 3.2.3: port = *DIGIT, so "a:" is a host with an empty port.
    out = outcome(engine, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert out.end == "closed" and out.requests[0][3] == [(b"host", host)]


@pytest.mark.parametrize(
    "line",
    [b"5", b"005", b"5;a", b"5;a=b", b"5;a=b;c=d", b'5;a="q \\" x"', b"5 ;a", b"5;\ta = b", b'5; a = "x"'],
)
def test_valid_chunk_size_lines(engine: str, line: bytes) -> None:
    # RFC 9110 5.6.3: "A recipient MUST parse for such bad whitespace [BWS] and remove it".
    out = outcome(engine, CHUNKED + line + b"\r\nhello\r\n0\r\n\r\n")
    assert out.end == "closed" and out.requests[0][4] == b"hello"


def test_bare_lf_is_taken_when_accepted(engine: str) -> None:
    # --accept-bare-lf: RFC 9112 2.2's MAY, in the head and the trailers; never in chunk framing.
    limits = Limits(bare_lf=True)
    raw = b"POST / HTTP/1.1\nHost: h\r\nTransfer-Encoding: chunked\n\n1\r\nx\r\n0\r\nX: y\n\n"
    (request,) = outcome(engine, raw, limits).requests
    assert request[3] == [(b"host", b"h"), (b"transfer-encoding", b"chunked")] and request[5] == [(b"x", b"y")]
    refused(engine, CHUNKED + b"1\nx\r\n0\r\n\r\n", 400, "invalid chunk size line", limits)
