"""The engines against each other and against h11: generated requests, valid and broken, fed
whole, byte by byte and in random pieces.

- The two engines (``--http fast`` and ``--http h11``) must make the same of every input: the
  same parsed method, target, version, headers, body, trailers, keep-alive and 100-continue,
  the same end, and every refusal with the same status.
- The fast engine and the h11 library must get the same accept/reject decision and the same
  parsed parts — or differ only in a documented deliberate way (``DELIBERATE_REJECTIONS`` in
  fastparse_harness.py: where RFC 9112 asks more than h11 does).

Each input is judged with bare LF refused (the default) or accepted (``--accept-bare-lf``).

Every input that ever made them disagree is kept in tests/fastparse_corpus/ and replayed by
``test_corpus``. FASTPARSE_EXAMPLES raises the example count (300 by default, for CI speed).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from fastparse_harness import assert_engines_agree, assert_same, by_byte, run_fast, split_at, whole
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.server.http1.fastparse import Limits

EXAMPLES = int(os.environ.get("FASTPARSE_EXAMPLES", "300"))
CORPUS = Path(__file__).parent / "fastparse_corpus"



TCHARS = "!#$%&'*+-.^_`|~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

# Per rule, (valid choices, broken choices). Each generated request breaks at most one rule
# (half of them none), so the one broken rule is seen among otherwise valid parts.
RULES = {
    "method": (
        st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"CONNECT", b"PATCH", b"M-SEARCH", b"get"]),
        st.sampled_from([b"G@T", b"", b"GE T", b"G\x00T", b"\xc3\x89", b"GET\t"]),
    ),
    "target": (
        st.sampled_from([b"/", b"/a/b?c=d&e", b"/%20x", b"http://h/x", b"//x"])
        | st.text(TCHARS + "/?%=&", max_size=8).map(lambda s: b"/" + s.encode()),
        st.sampled_from([b"*", b"h:80", b"no-slash", b"/a b", b"/\x7f", b"/caf\xc3\xa9", b""])
        | st.binary(max_size=6).map(lambda b: b"/" + b),
    ),
    "version": (
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]),
        st.sampled_from([b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1.1 ", b"HTTP/11", b"HTTP/1.a"]),
    ),
    "host": (st.just(1), st.sampled_from([0, 2])),
    "host-value": (
        st.sampled_from([b"example.com", b"example.com:8080", b"[::1]:80", b"10.0.0.1", b"", b"a,b", b"xn--e1a.%41"]),
        st.sampled_from([b"a@b", b"a, b", b"a b", b"a\x01b", b"a:8x", b"[::1", b"a\x7fb", b"%zz"]),
    ),
    "name": (
        st.sampled_from([b"Accept", b"X-Custom", b"cookie", b"User-Agent", b"TE", b"Upgrade"])
        | st.text(TCHARS, min_size=1, max_size=6).map(lambda s: s.encode()),
        st.text(TCHARS + " :\t\x00\x7f@", max_size=6).map(lambda s: s.encode("latin-1")),
    ),
    "value": (
        st.sampled_from([b"x", b" a  b ", b"\x01", b"caf\xe9", b"", b"\t", b"text/html; q=0.9"])
        | st.text(TCHARS + " \t", max_size=8).map(lambda s: s.encode()),
        st.sampled_from([b"a\x00b", b"a\rb", b"a\nb", b"a\x0bb"]) | st.binary(max_size=8),
    ),
    "colon": (st.sampled_from([b": ", b":", b":\t", b":  "]), st.sampled_from([b" : ", b"\t:"])),
    "fold": (st.just(False), st.just(True)),
    "eol": (st.just(b"\r\n"), st.just(b"\n")),
    "framing": (st.sampled_from(["none", "length", "chunked"]), st.just("both")),
    "content-length": (
        st.sampled_from(["right", "right", "right, right", "twice"]),
        st.sampled_from(["+", "0x", " pad ", "wrong-twice", "huge"]),
    ),
    "transfer-encoding": (
        st.sampled_from([b"chunked", b"Chunked"]),
        st.sampled_from(
            [b"gzip, chunked", b"chunked, gzip", b"gzip", b"chunked, chunked", b"chunked,", b",chunked", b""]
        ),
    ),
    "chunk-ext": (
        st.sampled_from([b"", b"", b"", b";a", b";a=b", b'; a="q \\" x"', b";a=b;c", b" ;a", b"; a = b"]),
        st.sampled_from([b";", b";a=", b";a\x00", b";=b", b';a="x', b" ", b";a ", b";a=b\t", b';a="\r"']),
    ),
    "chunk-size": (st.sampled_from(["hex", "HEX", "0pad"]), st.sampled_from(["none", "-", "x", "big"])),
    "chunk-end": (st.just(b"\r\n"), st.sampled_from([b"\n", b"", b"XX"])),
}
faults = st.sampled_from([None] * len(RULES) + list(RULES))


def pick(draw: st.DrawFn, fault: str | None, rule: str) -> object:
    good, bad = RULES[rule]
    return draw(bad if fault == rule else good)


@st.composite
def body_framing(draw: st.DrawFn, fault: str | None) -> tuple[list[tuple[bytes, bytes]], bytes]:
    kind = pick(draw, fault, "framing")
    body = draw(st.binary(max_size=40))
    headers: list[tuple[bytes, bytes]] = []
    raw = b""
    if kind in ("length", "both"):
        form = pick(draw, fault, "content-length")
        n = str(len(body)).encode()
        if form == "twice":
            headers += [(b"Content-Length", n), (b"content-length", n)]
        elif form == "wrong-twice":
            headers += [(b"Content-Length", n), (b"content-length", str(len(body) + 1).encode())]
        else:
            value = {"right": n, "right, right": n + b", " + n, "+": b"+" + n, "0x": b"0x" + n, " pad ": b" %s " % n}
            headers.append((b"Content-Length", value.get(form, b"9" * 21)))
        raw = body
    if kind in ("chunked", "both"):
        headers.append((b"Transfer-Encoding", pick(draw, fault, "transfer-encoding")))
        pieces = draw(st.lists(st.binary(min_size=1, max_size=12), max_size=3))
        raw = b""
        for piece in pieces:
            form = pick(draw, fault, "chunk-size")
            pattern = {"hex": b"%x", "HEX": b"%X", "0pad": b"00%x", "-": b"-%x", "x": b"0x%x"}.get(form, b"%x")
            size = pattern % len(piece)
            size = {"none": b"", "big": b"1" * 21}.get(form, size)
            ending = pick(draw, fault, "chunk-end")
            raw += size + pick(draw, fault, "chunk-ext") + b"\r\n" + piece + ending
        raw += b"0" + pick(draw, fault, "chunk-ext") + b"\r\n"
        for _ in range(draw(st.integers(0, 2))):
            raw += pick(draw, fault, "name") + b": " + pick(draw, fault, "value") + b"\r\n"
        raw += b"\r\n"
    return headers, raw


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    fault = draw(faults)
    method, target, version = (pick(draw, fault, rule) for rule in ("method", "target", "version"))
    headers = [(b"Host", pick(draw, fault, "host-value"))] * pick(draw, fault, "host")
    for _ in range(draw(st.integers(0, 3))):
        headers.append((pick(draw, fault, "name"), pick(draw, fault, "value")))
    if draw(st.booleans()):
        connection = st.sampled_from([b"close", b"keep-alive", b"Keep-Alive, Upgrade", b"CLOSE"])
        headers.append((b"Connection", draw(connection)))
    if draw(st.integers(0, 4)) == 0:
        headers.append((b"Expect", draw(st.sampled_from([b"100-continue", b"100-Continue, x", b"nothing"]))))
    framing, body = draw(body_framing(fault))
    headers += framing
    headers = draw(st.permutations(headers))
    lines = [method + b" " + target + b" " + version]
    for name, value in headers:
        lines.append(name + pick(draw, fault, "colon") + value)
    if pick(draw, fault, "fold"):
        lines.insert(draw(st.integers(1, len(lines))), b" folded")  # obs-fold
    raw = b""
    for line in lines:
        raw += line + (pick(draw, fault, "eol") if draw(st.booleans()) else b"\r\n")
    raw += pick(draw, fault, "eol") if draw(st.booleans()) else b"\r\n"
    return raw + body


def mutate(draw: st.DrawFn, raw: bytes) -> bytes:
    """Occasionally damage one byte: insert, delete or replace, at a random place."""
    if not raw or draw(st.integers(0, 5)):
        return raw
    i = draw(st.integers(0, len(raw) - 1))
    byte = bytes([draw(st.sampled_from(b" \t\r\n\x00:;,\x7f\xff0aA/"))])
    op = draw(st.sampled_from(["insert", "delete", "replace"]))
    if op == "insert":
        return raw[:i] + byte + raw[i:]
    if op == "delete":
        return raw[:i] + raw[i + 1 :]
    return raw[:i] + byte + raw[i + 1 :]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_same_decisions_as_h11_and_between_engines(data: st.DataObject) -> None:
    pipeline = data.draw(st.lists(requests(), min_size=1, max_size=3))
    raw = mutate(data.draw, b"".join(pipeline))
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=6))
    limits = Limits(bare_lf=data.draw(st.booleans()))
    for chunks in (whole(raw), by_byte(raw), split_at(raw, points)):
        assert_same(raw, chunks, limits)
        assert_engines_agree(raw, chunks, limits)


# -- the corpus: every input that ever disagreed, plus one file per RFC rule -----------------
# valid-*.http must be accepted by both engines and invalid-*.http refused, with the default
# limits; each also goes through both comparisons (bare LF refused and accepted), replayed
# whole, by line, by byte and in random chunks.

CASES = sorted(CORPUS.glob("*.http"))


def _by_line(raw: bytes) -> list[bytes]:
    return [line for line in raw.splitlines(keepends=True)]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus(path: Path) -> None:
    raw = path.read_bytes()
    rng = random.Random(path.name)
    splits = [whole(raw), _by_line(raw), by_byte(raw)] + [
        split_at(raw, [rng.randrange(len(raw) + 1) for _ in range(5)]) for _ in range(5)
    ]
    outcomes = set()
    for chunks in splits:
        for limits in (Limits(), Limits(bare_lf=True)):
            assert_same(raw, chunks, limits)
            assert_engines_agree(raw, chunks, limits)
        fast = assert_engines_agree(raw, chunks)
        outcomes.add((fast.end, fast.status, repr(fast.requests)))
        if path.name.startswith("valid-"):
            assert fast.end != "error", fast
        else:
            assert path.name.startswith("invalid-") and fast.end == "error", fast
    assert len(outcomes) == 1, "the outcome depends on how the bytes were split"


def test_corpus_is_not_empty() -> None:
    assert len(CASES) >= 20
    assert run_fast([b""]).end == "closed"
