"""``--path-policy``: which request paths reach an app (server/target.py). By default a path that
climbs above the root through dot-segments, holds NUL, has an invalid percent-escape or is not
UTF-8 once decoded is answered with 400, as nginx answers it; ``lenient`` hands it to the app.
``raw_path`` is always the path as sent."""

from __future__ import annotations

import pytest
from conftest import Recorder, assert_refused, request
from ws_helpers import echo_app, handshake_request

from treadle.server.target import InvalidPath, split_target

# (path as sent, why strict refuses it, the path lenient hands to the app)
REFUSED = [
    # climbs above the root through dot-segments (RFC 3986 5.2.4), raw or percent-encoded
    (b"/../etc/passwd", "climbs above the root", "/../etc/passwd"),
    (b"/a/%2e%2e/%2e%2e/etc", "climbs above the root", "/a/../../etc"),
    (b"/a/..%2F..%2Fetc", "climbs above the root", "/a/../../etc"),  # the slashes count once decoded
    (b"/..", "climbs above the root", "/.."),
    (b"/a//../..", "climbs above the root", "/a//../.."),  # an empty segment is no level
    # holds NUL, raw or encoded: C code, and file systems, end the string there
    (b"/a%00b", "NUL", "/a\x00b"),
    (b"/a\x00b", "NUL", "/a\x00b"),  # (not in an HTTP/1.1 request line; any protocol's paths come here)
    # RFC 3986 2.1: pct-encoded = "%" HEXDIG HEXDIG
    (b"/%ZZ", "invalid percent-escape", "/%ZZ"),
    (b"/a%2", "invalid percent-escape", "/a%2"),
    (b"/a%", "invalid percent-escape", "/a%"),
    # not UTF-8 once decoded; RFC 3629 3: overlong forms ("%c0%ae" is ".") MUST NOT be decoded
    (b"/%c0%ae%c0%ae/", "not UTF-8", "/\ufffd\ufffd\ufffd\ufffd/"),
    (b"/%ff", "not UTF-8", "/\ufffd"),
    (b"/%ed%a0%80", "not UTF-8", "/\ufffd\ufffd\ufffd"),  # a UTF-16 surrogate
]

ALLOWED = [
    (b"/", "/"),
    (b"/a/../b", "/a/../b"),  # back down, never above the root: the app sees it as sent
    (b"/a/./b/.", "/a/./b/."),
    (b"/..a/b..", "/..a/b.."),  # not dot-segments
    (b"/caf%C3%A9/%E2%82%AC", "/café/€"),
    (b"/a%2Fb", "/a/b"),
    (b"*", "*"),
]


@pytest.mark.parametrize("raw_path,reason,lenient", REFUSED)
def test_strict_refuses(raw_path, reason, lenient):
    with pytest.raises(InvalidPath, match=reason):
        split_target(raw_path + b"?q=%00", "")


@pytest.mark.parametrize("raw_path,reason,lenient", REFUSED)
def test_lenient_hands_them_over_decoded_as_can_be(raw_path, reason, lenient):
    assert split_target(raw_path + b"?q=1", "", strict=False) == (lenient, raw_path, b"q=1")


@pytest.mark.parametrize("raw_path,path", ALLOWED)
def test_strict_allows(raw_path, path):
    assert split_target(raw_path + b"?x=%ZZ", "") == (path, raw_path, b"x=%ZZ")  # the query is the app's
    assert split_target(raw_path, "/app") == ("/app" + path, b"/app" + raw_path, b"")


def test_absolute_form_targets_are_judged_by_their_path():
    with pytest.raises(InvalidPath):
        split_target(b"http://example.org/../x", "")
    assert split_target(b"http://example.org", "") == ("/", b"/", b"")


THE_ISSUES_EXAMPLES = [b"/../etc/passwd", b"/a/%2e%2e/%2e%2e/etc", b"/a%00b", b"/%ZZ", b"/%c0%ae%c0%ae/"]


@pytest.mark.parametrize("raw_path", THE_ISSUES_EXAMPLES)
def test_served_refused_by_default_and_passed_when_lenient(serve, raw_path):
    strict, lenient = Recorder(), Recorder()
    assert_refused(serve(strict), b"GET " + raw_path + b" HTTP/1.1\r\nHost: a\r\n\r\n", 400)
    assert [scope["raw_path"] for scope in strict.scopes] == [b"/"]  # the request after it
    srv = serve(lenient, path_policy="lenient")
    with srv.connect() as c:
        c.send(b"GET " + raw_path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
    assert lenient.scopes[0]["raw_path"] == raw_path


def test_served_paths_that_stay_below_the_root(serve):
    rec = Recorder()
    srv = serve(rec)
    with srv.connect() as c:
        for raw_path, _ in ALLOWED[:-1]:
            c.send(request(target=raw_path.decode()))
            assert c.read_response().status == 200
    assert [(s["path"], s["raw_path"]) for s in rec.scopes] == [(p, r) for r, p in ALLOWED[:-1]]


def test_wsgi_apps_are_covered_too(serve):
    called = []

    def app(environ, start_response):
        called.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    srv = serve(app, interface="wsgi")
    with srv.connect() as c:
        c.send(b"GET /static/%2e%2e/%2e%2e/secret HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 400
    assert called == []


def test_a_websocket_handshake_with_a_refused_path_is_400(serve):
    srv = serve(echo_app)
    with srv.connect() as c:
        c.send(handshake_request("/chat/../../x"))
        resp = c.read_response()
        assert resp.status == 400
        assert c.is_closed()
    with srv.connect() as c:
        c.send(handshake_request("/chat"))
        assert c.read_head()[0] == 101
