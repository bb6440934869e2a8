"""The control client: a well-behaved client whose latency says what an attack costs others.

It runs in a process of its own (``python -m loadtests.attack.control HOST PORT``), so the
attack's work in the harness cannot slow it down: a GET every ``INTERVAL`` on one keep-alive
connection, a new connection whenever the server closes one, each request given
``TIMEOUT``. It prints ``ready`` after its first answer; when its stdin closes (the harness
is done) or after ``--seconds``, it prints one line of JSON: how many requests, how many
failed and how, and the latency percentiles of those that did not.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time

INTERVAL = 0.01  # 100 requests a second: often enough for a p99, light enough not to matter
TIMEOUT = 5.0
REQUEST = b"GET / HTTP/1.1\r\nHost: control\r\n\r\n"


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buffer = b""

    def get(self) -> tuple[int, bool]:
        """One request; returns the status, and whether the connection may carry another
        (not after ``Connection: close``). Raises OSError (ConnectionError at EOF)."""
        self.sock.sendall(REQUEST)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        keep_alive = True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        return status, keep_alive

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buffer += data

    def close(self) -> None:
        self.sock.close()


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(host: str, port: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connection: Connection | None = None
    ready = False
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            if connection is None:
                connection = Connection(host, port)
            status, keep_alive = connection.get()
            if status != 200:
                raise OSError(f"status {status}")
            latencies.append(time.monotonic() - started)
            if not keep_alive:
                connection.close()
                connection = None
            if not ready:
                print("ready", flush=True)
                ready = True
        except OSError as exc:
            if ready:  # failures before the first answer are the server still starting
                kind = type(exc).__name__ if not str(exc).startswith("status") else str(exc)
                errors[kind] = errors.get(kind, 0) + 1
            if connection is not None:
                connection.close()
                connection = None
        # Sleep out the interval, but wake at once if the harness closes our stdin.
        readable, _, _ = select.select([sys.stdin], [], [], max(0.0, INTERVAL - (time.monotonic() - started)))
        if readable and not sys.stdin.readline():
            break
    if connection is not None:
        connection.close()
    return {
        "requests": len(latencies) + sum(errors.values()),
        "errors": errors,
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(max(latencies) if latencies else None),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.attack.control")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--seconds", type=float, default=600.0, help="stop by itself after this long")
    args = parser.parse_args()
    print(json.dumps(run(args.host, args.port, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
