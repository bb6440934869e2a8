"""The pipe a worker reports on to its supervisor: one framed message after another.

A message is a kind byte, the payload's length (4 bytes, big-endian) and the payload::

    READY   b"1"  once listening                           (the worker's main thread)
    RETIRE  b"r"  --limit-max-requests reached             (its event loop)
    BEAT    b"h"  the loop is alive: the health check       (its event loop, periodically)
    STATS   b"s"  JSON: Observer.report(), for --stats-*    (its event loop, periodically)

Framing, not single bytes, because a stats payload can hold any byte, and is larger than
``PIPE_BUF``: the kernel may split such a write, and two threads of the worker write.

Writer (the worker): non-blocking, so that a supervisor that stops reading (stopped in a
debugger, say) can never block a worker's event loop. What the pipe cannot take now waits
in a buffer, sent before anything else on the next ``send``; periodic messages (BEAT,
STATS) are skipped while the buffer is not empty, so it stays small, while READY and
RETIRE always queue.

Reader (the supervisor): ``ReportReader.feed`` takes whatever bytes arrived and returns the
complete messages; a worker that dies mid-message leaves an incomplete one, dropped with
the pipe. A message claiming more than ``MAX_PAYLOAD`` bytes means the stream is not ours
to read (``ReportError``).
"""

from __future__ import annotations

import os
import struct
import threading
from enum import Enum

_HEADER = struct.Struct(">cI")
MAX_PAYLOAD = 1 << 20  # a stats report is a few KiB; a MiB is certainly not one


class Report(bytes, Enum):
    READY = b"1"
    RETIRE = b"r"
    BEAT = b"h"
    STATS = b"s"


_PERIODIC = (Report.BEAT, Report.STATS)


class ReportError(Exception):
    """The pipe carries something that is not a report."""


class ReportWriter:
    """The worker's end; ``send`` may be called from any thread."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._pending = b""
        self._lock = threading.Lock()

    def send(self, kind: Report, payload: bytes = b"") -> bool:
        """Queue the message and write what the pipe takes; a periodic one is skipped while
        earlier bytes still wait. False once the supervisor is gone (the pipe is broken)."""
        with self._lock:
            if not (self._pending and kind in _PERIODIC):
                self._pending += _HEADER.pack(kind.value, len(payload)) + payload
            try:
                self._flush()
            except BrokenPipeError:
                return False
            return True

    def _flush(self) -> None:
        while self._pending:
            try:
                written = os.write(self._fd, self._pending)
            except BlockingIOError:
                return
            self._pending = self._pending[written:]


class ReportReader:
    """The supervisor's end, for one worker's pipe."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Report, bytes]]:
        """The messages that ``data`` completes, in order."""
        buffer = self._buffer
        buffer += data
        messages = []
        while len(buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(buffer)
            if length > MAX_PAYLOAD:
                raise ReportError(f"a report of {length} bytes")
            try:
                report = Report(kind)
            except ValueError:
                raise ReportError(f"unknown report kind {kind!r}")
            end = _HEADER.size + length
            if len(buffer) < end:
                break
            messages.append((report, bytes(buffer[_HEADER.size : end])))
            del buffer[:end]
        return messages
