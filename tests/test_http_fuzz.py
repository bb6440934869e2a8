"""Fuzzing the connection with mangled requests (h11's rule, applied to the server): each
input gets a well-formed response or a close — never a crash, a stray log line, or a
server that stops answering others."""

from __future__ import annotations

import logging
import socket

from conftest import request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEEDS = [
    request("GET", "/path?q=1", headers=[("Accept", "*/*")]),
    request("POST", "/", body=b"hello world"),
    request("POST", "/", headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nhello\r\n0\r\n\r\n",
    request("GET", "/", headers=[("Expect", "100-continue")]),
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]


@st.composite
def mangled(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r\n", b":", b" ", b"\x00", b"\t", b"0", b"chunked", b"\xff"]))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 5))]
        elif op == "dup":
            data += data[pos:]
    return bytes(data) + draw(st.sampled_from([b"", b"\r\n\r\n"]))


async def tolerant_app(scope, receive, send):
    """Reads the body, giving up quietly if the client leaves, then answers."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message["more_body"]:
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"fine"})


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        sock.settimeout(0.2)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return received


def test_mangled_requests_never_break_the_server(serve, caplog):
    caplog.set_level(logging.WARNING)
    srv = serve(tolerant_app, timeout_request_header=2)

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(mangled())
    def check(payload):
        received = _exchange(srv.port, payload)
        if received:
            assert received.startswith(b"HTTP/1.1 "), received[:100]
            status = int(received[9:12])
            assert status in (100, 200, 400, 408, 413, 431, 501, 505), received[:100]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text

    check()
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().body == b"fine"
