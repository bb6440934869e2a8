"""Micro-benchmark: one request/response cycle through h11, and through what the server runs
instead (the fast parser and server/http1/writer.py), sans I/O.

A cycle is what a server does per request: feed the bytes, pull events until the request
is complete, serialise a response (head, body, end), get ready for the next request. No
sockets, so this is the protocol cost alone. Run: ``python loadtests/parse_bench.py``.
"""

from __future__ import annotations

import argparse
import functools
import timeit

import h11

from treadle.server.http1 import fastparse
from treadle.server.http1.writer import ResponseWriter

GET = (
    b"GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    b"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nCookie: session=abc123\r\n\r\n"
)
POST = (
    b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n"
    b"Content-Length: 27\r\n\r\n" + b'{"name": "treadle", "n": 1}'
)
WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
BODY = b"Hello, world!"


def h11_cycle(conn: h11.Connection, raw: bytes) -> None:
    conn.receive_data(raw)
    while True:
        event = conn.next_event()
        if type(event) is h11.EndOfMessage:
            break
    conn.send(h11.Response(status_code=200, headers=HEADERS))
    conn.send(h11.Data(data=BODY))
    conn.send(h11.EndOfMessage())
    conn.start_next_cycle()


def _no_defaults(has_date: bool, has_server: bool) -> bytes:
    return b""


def fast_cycle(conn: fastparse.ServerConnection, writer: ResponseWriter, raw: bytes) -> None:
    conn.receive_data(raw)
    while True:
        event = conn.next_event()
        if type(event) is fastparse.Request:
            request = event
        elif type(event) is fastparse.EndOfMessage:
            break
    writer.start(200, HEADERS, False, False, request.method == b"HEAD", request.te_trailers, True, _no_defaults)
    writer.body(BODY, False)
    conn.next_request()


def measure(number: int, repeat: int) -> list[tuple[str, float, float]]:
    rows = []
    for name, raw in (("wrk GET (1 header)", WRK), ("browser GET (7 headers)", GET), ("POST 27-byte body", POST)):
        h = h11.Connection(h11.SERVER)
        f = fastparse.ServerConnection()
        w = ResponseWriter()
        t_h11 = min(timeit.repeat(functools.partial(h11_cycle, h, raw), number=number, repeat=repeat)) / number
        t_fast = min(timeit.repeat(functools.partial(fast_cycle, f, w, raw), number=number, repeat=repeat)) / number
        rows.append((name, t_h11 * 1e6, t_fast * 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'request':<26}{'h11 µs':>10}{'fast µs':>10}{'speed-up':>10}")
    for name, h, f in measure(args.number, args.repeat):
        print(f"{name:<26}{h:>10.2f}{f:>10.2f}{h / f:>9.1f}x")


if __name__ == "__main__":
    main()
