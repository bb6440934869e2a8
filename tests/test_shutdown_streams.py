"""Graceful shutdown with streams open (SIGTERM to a real server process).

An event stream (``text/event-stream``) has no end of its own, so on shutdown it is ended at
once, properly (the last chunk, then the connection closes), whether its app listens for the
disconnect (sse-starlette), does not (Starlette's plain StreamingResponse on ASGI 2.4), or is
a WSGI generator. Any other response keeps the whole graceful timeout to finish: a download in
flight completes. Every task the app left is cancelled and awaited before the loop closes, so
no "Task was destroyed but it is pending!" and no clean-up running during interpreter teardown.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest
from prod_support import Proc

pytest.importorskip("sse_starlette")

GRACEFUL = 20.0  # far longer than any of these shutdowns may take


class ChunkedReader:
    """Reads one chunked response from a raw socket, noting whether it ended properly."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=GRACEFUL)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.buffer = b""
        self.head = self._until(b"\r\n\r\n")
        assert self.head.startswith(b"HTTP/1.1 200 "), self.head
        assert b"transfer-encoding: chunked" in self.head.lower(), self.head

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed before {marker!r}")
            self.buffer += data
        found, _, self.buffer = self.buffer.partition(marker)
        return found

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed with {len(self.buffer)} of {size} bytes")
            self.buffer += data
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def chunk(self) -> bytes:
        """The next chunk's data; b"" for the last chunk."""
        size = int(self._until(b"\r\n").split(b";")[0], 16)
        data = self._exactly(size)
        assert self._until(b"\r\n") == b""  # after the data; after the last chunk, no trailers
        return data

    def rest(self) -> tuple[bytes, bool]:
        """Everything until the last chunk; True if it came, False if the connection closed first."""
        body = b""
        try:
            while True:
                data = self.chunk()
                if not data:
                    return body, True
                body += data
        except ConnectionError:
            return body, False

    def closed_after(self) -> bool:
        return self.sock.recv(1) == b""


def _serve(*args: str) -> tuple[Proc, int]:
    proc = Proc.treadle(*args, "--port", "0", "--timeout-graceful-shutdown", str(GRACEFUL), "--lifespan", "off")
    return proc, proc.port()


def _assert_clean_exit(proc: Proc, started: float, closed: str) -> None:
    assert proc.finish(timeout=GRACEFUL) == 0
    assert time.monotonic() - started < GRACEFUL / 2, "shutdown waited for the stream"
    output = proc.output()
    assert closed in output
    for bad in ("Task was destroyed", "Traceback", "ERROR", "Cancelling"):
        assert bad not in output, output


@pytest.mark.parametrize("path, closed", [("/sse", "sse generator closed"), ("/plain", "plain generator closed")])
def test_an_asgi_event_stream_ends_properly_at_shutdown_and_a_download_completes(path, closed):
    proc, port = _serve("stream_apps:app")
    try:
        stream = ChunkedReader(port, path)
        assert b"event 0" in stream.chunk()
        download = ChunkedReader(port, "/download")
        downloaded: list = []
        reader = threading.Thread(target=lambda: downloaded.append(download.rest()))
        reader.start()
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        body, ended = stream.rest()
        assert ended, "the event stream was cut without its last chunk"
        assert stream.closed_after()
        reader.join(GRACEFUL)
        assert downloaded and downloaded[0][1], "the download was cut short"
        assert len(downloaded[0][0]) + 1024 >= 40 * 1024  # all of it (the first chunk may have gone with the head)
        _assert_clean_exit(proc, started, closed)
    finally:
        proc.kill_group()


def test_a_wsgi_event_stream_ends_properly_at_shutdown():
    proc, port = _serve("stream_apps:wsgi_events", "--interface", "wsgi")
    try:
        stream = ChunkedReader(port, "/")
        assert b"event 0" in stream.chunk()
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        body, ended = stream.rest()
        assert ended, "the event stream was cut without its last chunk"
        assert stream.closed_after()
        _assert_clean_exit(proc, started, "wsgi generator closed")
    finally:
        proc.kill_group()


def test_a_background_task_left_running_is_cancelled_and_awaited_before_exit(tmp_path):
    (tmp_path / "leaves_a_task.py").write_text(
        "import asyncio\n"
        "background = []\n"
        "async def forever():\n"
        "    try:\n"
        "        await asyncio.sleep(3600)\n"
        "    finally:\n"
        "        await asyncio.sleep(0)  # still on a running loop\n"
        "        print('background finally ran', flush=True)\n"
        "async def app(scope, receive, send):\n"
        "    if not background:\n"
        "        background.append(asyncio.get_running_loop().create_task(forever()))\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'started'})\n"
    )
    proc = Proc.treadle("leaves_a_task:app", "--port", "0", "--lifespan", "off", cwd=tmp_path)
    try:
        port = proc.port()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b"started" in sock.recv(65536)
        started = time.monotonic()
        proc.signal(signal.SIGTERM)
        _assert_clean_exit(proc, started, "background finally ran")
    finally:
        proc.kill_group()
