"""Drive parsers over the same bytes and describe what each made of them: the two engines
(server/http1/parsers.py: ``--http fast`` and ``--http h11``, which must agree on everything,
the status of every refusal included) and the h11 library itself (from which the fast engine
may differ only in the documented ways listed below).

All are driven the way the server drives them: bytes fed in the given pieces, events
pulled until NEED_DATA, a minimal response after each complete request, and the next
request parsed only if the connection is kept alive (the h11 library, the reference, gets a
fresh ``h11.Connection`` per request, so HTTP/1.0 keep-alive works the same). At the end
the client's EOF is fed, so a truncated request is an error for all.

The outcome is a list of parsed requests plus how the stream ended: "closed" (clean EOF
between requests), "kept" (the server would close: not keep-alive) or "error" with a message
and, from an engine, the status the server would answer.
"""

from __future__ import annotations

from typing import Any, Iterable

import h11

from treadle.server.http1 import fastparse
from treadle.server.http1.fastparse import DEFAULT_LIMITS, DEFAULT_MAX_HEAD_SIZE, Limits, grammar
from treadle.server.http1.parsers import new_parser

LIMIT = DEFAULT_MAX_HEAD_SIZE


class Outcome:
    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.end = "closed"
        self.error = ""
        self.status = 0  # an engine's refusal: the status the server answers
        self.seen: list[dict[str, Any]] = []  # what h11 made of each request head, for explanations

    def __repr__(self) -> str:
        return f"Outcome(end={self.end!r}, status={self.status}, error={self.error!r}, requests={self.requests!r})"


def _keep_alive(http_version: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    # The rule server/http1/connection.py applies on top of h11 (which has no HTTP/1.0 keep-alive).
    tokens = set()
    for name, value in headers:
        if name == b"connection":
            tokens |= {t.strip() for t in value.lower().split(b",")}
    if b"close" in tokens:
        return False
    return http_version != b"1.0" or b"keep-alive" in tokens


def _host_from_target(target: bytes, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # RFC 9112 3.2.2: the server takes the host of an absolute-form target, not the Host field.
    match = grammar.absolute_form(target) if target[:1] != b"/" else None
    if match is None:
        return headers
    if any(name == b"host" for name, _ in headers):
        return [(name, match.group(1) if name == b"host" else value) for name, value in headers]
    return headers + [(b"host", match.group(1))]


def run_h11(chunks: Iterable[bytes]) -> Outcome:
    out = Outcome()
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=LIMIT)
    current: list[Any] = []
    stopped = False

    def pump() -> bool:
        nonlocal conn, current, stopped
        while True:
            event = conn.next_event()
            if type(event) is h11.Request:
                headers = [(n, v) for n, v in event.headers]
                expect = conn.they_are_waiting_for_100_continue and event.http_version != b"1.0"
                out.seen.append(
                    {"method": event.method, "version": event.http_version, "target": event.target, "headers": headers}
                )
                headers = _host_from_target(event.target, headers)
                current = [event.method, event.target, event.http_version, headers, b"", [], expect]
            elif type(event) is h11.Data:
                current[4] += event.data
            elif type(event) is h11.EndOfMessage:
                current[5] = [(n, v) for n, v in event.headers]
                keep = _keep_alive(current[2], current[3])
                out.requests.append((*current, keep))
                if not keep:
                    out.end = "kept"
                    stopped = True
                    return False
                data = conn.trailing_data[0]
                conn = h11.Connection(h11.SERVER, max_incomplete_event_size=LIMIT)
                if data:  # b"" would mean EOF to h11
                    conn.receive_data(data)
            elif type(event) is h11.ConnectionClosed:
                return False
            else:
                return True

    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            if not pump():
                return out
        conn.receive_data(b"")
        pump()
    except h11.RemoteProtocolError as exc:
        out.end, out.error = "error", str(exc)
    return out


def run_engine(engine: str, chunks: Iterable[bytes], limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """What one of the server's engines (``new_parser``) makes of the bytes."""
    out = Outcome()
    conn = new_parser(engine, limits)
    current: list[Any] = []

    def pump() -> bool:
        nonlocal current
        while True:
            event = conn.next_event()
            kind = type(event)
            if kind is fastparse.Request:
                current = [event.method, event.target, event.http_version, list(event.headers), b"", []]
                current += [event.expect_continue, event.keep_alive]
            elif kind is fastparse.Data:
                current[4] += event.data
            elif kind is fastparse.EndOfMessage:
                current[5] = list(event.trailers)
                keep_alive = current.pop()
                out.requests.append((*current, keep_alive))
                if not keep_alive:
                    out.end = "kept"
                    return False
                conn.next_request()  # the server's response is rendered elsewhere
            elif kind is fastparse.ConnectionClosed:
                return False
            else:
                return True

    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            if not pump():
                return out
        conn.receive_data(b"")
        pump()
    except fastparse.RemoteProtocolError as exc:
        out.end, out.error, out.status = "error", str(exc), exc.status
    return out


def run_fast(chunks: Iterable[bytes], limits: Limits = DEFAULT_LIMITS) -> Outcome:
    return run_engine("fast", chunks, limits)


def whole(raw: bytes) -> list[bytes]:
    return [raw]


def by_byte(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def split_at(raw: bytes, points: Iterable[int]) -> list[bytes]:
    cuts = sorted({p % (len(raw) + 1) for p in points} | {0, len(raw)})
    return [raw[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


# -- deliberate differences from h11 ---------------------------------------------------------
# Each entry: a prefix of our error message, and a check on what h11 parsed that confirms the
# request really has the construct the rule is about. A disagreement is accepted only if both
# hold; every other disagreement fails the test.


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(n == name for n, _ in headers)


def _joined_lower(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    return b",".join(v for n, v in headers if n == name).lower()


def _host_value(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(v for n, v in headers if n == b"host")


DELIBERATE_REJECTIONS = {
    # RFC 9112 2.2: a bare LF line end MAY be taken; by default it is refused (h11 takes it).
    "bare LF": lambda raw, last: raw.count(b"\n") != raw.count(b"\r\n"),
    # RFC 9112 3.2: a Host with an invalid value MUST get 400; h11 takes any field value.
    "invalid Host": lambda raw, last: grammar.is_host(_host_value(last["headers"])) is None,
    # RFC 9112 5.2: obs-fold MAY be rejected; h11 unfolds it.
    "obsolete line folding": lambda raw, last: b"\n " in raw or b"\n\t" in raw,
    # RFC 9112 6.1: CL with TE MAY be rejected (request smuggling); h11 lets TE win.
    "both Content-Length and Transfer-Encoding": lambda raw, last: _has(last["headers"], b"content-length")
    and _has(last["headers"], b"transfer-encoding"),
    # RFC 9112 6.1: TE in HTTP/1.0 means faulty framing; h11 accepts it.
    "Transfer-Encoding in an HTTP/1.0 request": lambda raw, last: last["version"] == b"1.0"
    and _has(last["headers"], b"transfer-encoding"),
    # RFC 9112 3.2: a request-target in none of the four forms; h11 accepts any VCHAR run.
    "request-target": lambda raw, last: last["target"][:1] != b"/" or last["method"] == b"CONNECT",
    "asterisk-form": lambda raw, last: last["target"] == b"*",
    # RFC 9112 2.3: only major version 1 is ours (505); h11 parses any digit.
    "unsupported HTTP version": lambda raw, last: last["version"][:1] != b"1",
    # A 1.x minor version above 1 is HTTP/1.1 to us, so Host is required; h11 requires it for "1.1" only.
    "missing Host header": lambda raw, last: last["version"] not in (b"1.0", b"1.1"),
    # RFC 9112 7.1.1: chunk extensions have a grammar; h11 accepts ";" followed by anything, and
    # whitespace after the size or the last extension, where the grammar has none.
    "invalid chunk size line": lambda raw, last: b";" in raw or b" \r\n" in raw or b"\t\r\n" in raw,
}


def explained(fast: Outcome, slow: Outcome, raw: bytes) -> bool:
    """Is the disagreement one of the documented deliberate differences?"""
    k = len(fast.requests)
    if fast.end == "error" and slow.requests[:k] == fast.requests and len(slow.seen) > k:
        for rule, confirms in DELIBERATE_REJECTIONS.items():
            if rule in fast.error:
                return bool(confirms(raw, slow.seen[k]))
    # RFC 9112 7.1.1 allows whitespace (BWS) before a chunk extension's ";"; h11 does not.
    k = len(slow.requests)
    if slow.end == "error" and "illegal chunk header" in slow.error and fast.requests[:k] == slow.requests:
        return b" ;" in raw or b"\t;" in raw
    return False


def assert_same(raw: bytes, chunks: list[bytes], limits: Limits = DEFAULT_LIMITS) -> tuple[Outcome, Outcome]:
    """The fast engine against the h11 library: the same, or different in a documented way."""
    fast, slow = run_fast(chunks, limits), run_h11(chunks)
    if (fast.requests, fast.end) != (slow.requests, slow.end):
        assert explained(fast, slow, raw), f"\nraw={raw!r}\nfast={fast}\nh11={slow}"
    return fast, slow


def assert_engines_agree(raw: bytes, chunks: list[bytes], limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """The two engines: the same requests, the same end, and a refusal with the same status."""
    fast, h11_engine = run_engine("fast", chunks, limits), run_engine("h11", chunks, limits)
    assert (fast.requests, fast.end, fast.status) == (h11_engine.requests, h11_engine.end, h11_engine.status), (
        f"\nraw={raw!r}\nlimits={limits}\nfast={fast}\nh11 engine={h11_engine}"
    )
    return fast
