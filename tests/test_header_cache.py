"""Response headers are checked once per distinct (name, value) and then reused
(server/http1/writer.py ``_FIELD_LINES``, server/wsgi/cycle.py ``_ENCODED``): what is served must be
exactly what checking every response would give, on the first request and the hundredth."""

from __future__ import annotations

from conftest import request

SHARED = ("X-Shared", "same on every response")


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"]
    body = path.encode()
    headers = [("Content-Type", "text/plain"), SHARED]
    if path == "/length":
        headers.append(("Content-Length", str(len(body))))
    elif path == "/bad":
        headers.append(("X-Bad", "line\r\nbreak"))
    start_response("200 OK", headers)
    return iter([body])  # not a list: the length comes from the app or not at all


ASGI_SHARED = (b"x-shared", b"same on every response")


async def asgi_app(scope, receive, send):
    path = scope["path"]
    body = path.encode()
    headers = [(b"content-type", b"text/plain"), ASGI_SHARED]
    if path == "/length":
        headers.append((b"content-length", b"%d" % len(body)))
    elif path == "/bad":
        headers.append((b"x-bad", b"line\r\nbreak"))
    elif path == "/list-pair":
        headers.append([b"x-list", b"pairs are fine too"])
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _exchange(srv, paths):
    responses = []
    with srv.connect() as c:
        for path in paths:
            c.send(request("GET", path))
            responses.append(c.read_response())
            if responses[-1].status != 200:
                break
    return responses


def test_wsgi_repeated_headers_are_served_as_sent_and_lengths_still_count(serve):
    srv = serve(wsgi_app, interface="wsgi")
    paths = ["/length", "/no-length", "/length"] * 3
    responses = _exchange(srv, paths)
    assert len(responses) == len(paths)
    for resp, path in zip(responses, paths):
        assert resp.status == 200 and resp.body == path.encode()
        assert resp.header(b"X-Shared") == b"same on every response"
        # The app's own Content-Length (never cached) or the one the server adds, once. The server
        # adds one only when the worker thread has finished the (len-less) iterable by the time the
        # reactor sends the head; when the reactor is first, the body is chunked instead. Which
        # thread wins is up to the interpreter's thread switching (PyPy's differs from CPython's).
        lengths = resp.header_list(b"content-length")
        if path == "/length" or not resp.chunked:
            assert lengths == [b"%d" % len(path)]
        else:
            assert lengths == []


def test_wsgi_a_bad_value_next_to_known_headers_is_still_refused(serve):
    srv = serve(wsgi_app, interface="wsgi")
    first, bad = _exchange(srv, ["/ok", "/bad"])
    assert first.status == 200
    assert bad.status == 500


def test_asgi_repeated_headers_are_served_as_sent(serve):
    srv = serve(asgi_app)
    paths = ["/length", "/chunked", "/list-pair"] * 3
    responses = _exchange(srv, paths)
    assert len(responses) == len(paths)
    for resp, path in zip(responses, paths):
        assert resp.status == 200 and resp.body == path.encode()
        assert resp.header(b"x-shared") == b"same on every response"
        assert resp.chunked == (path != "/length")
    assert responses[2].header(b"x-list") == b"pairs are fine too"


def test_asgi_a_bad_value_next_to_known_headers_is_still_refused(serve):
    srv = serve(asgi_app)
    first, bad = _exchange(srv, ["/ok", "/bad"])
    assert first.status == 200
    assert bad.status == 500
