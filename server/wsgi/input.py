"""``WsgiInput``: ``wsgi.input``, the request body streamed from the reactor to a worker.

The reactor feeds body bytes as h11 parses them; the worker reads them when the app asks.
Neither side ever waits for the other while holding the buffer's lock for long, and the
buffer is bounded without this class knowing the bound: the connection stops reading the
socket once more than its limit is buffered, and this class calls ``ask()`` (which runs
the connection's ``want_body`` in the reactor) whenever the worker needs more than is
buffered — it ran dry, or one read asks for more than the limit — which both resumes
reading and sends an owed ``100 Continue``, so a client waiting for one gets it only once
the app actually reads the body.

Reads never go past the end of the body: the buffer only ever holds the body h11 framed
(Content-Length or chunked), and at its end reads return ``b""``. ``read(n)`` blocks until
it has ``n`` bytes or the body ends, like a file. A client that leaves before sending all
of its body makes a read that cannot be satisfied raise ``ClientDisconnected``: a silent
short read would let the app treat a truncated upload as complete.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, Iterator

from treadle.server.exchange import ClientDisconnected


class WsgiInput:
    __slots__ = ("_lock", "_cond", "_buffer", "_more", "_gone", "_asked", "_ask")

    def __init__(self, ask: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._cond: threading.Condition | None = None  # made on the first wait: most bodies never need one
        self._buffer = bytearray()
        self._more = True  # the client has more body to send
        self._gone = False  # the client disconnected (or sent a malformed body)
        self._asked = False  # ask() was called and no body has arrived since
        self._ask = ask

    # -- runs in the reactor -------------------------------------------------------------------

    def feed(self, data: bytes) -> int:
        """Append body bytes; returns how many are now buffered (for the connection's flow control)."""
        with self._lock:
            self._buffer += data
            self._asked = False
            self._wake()
            return len(self._buffer)

    def end(self) -> None:
        with self._lock:
            self._more = False
            self._wake()

    def disconnect(self) -> None:
        with self._lock:
            self._gone = True
            self._wake()

    def release(self) -> None:
        """The request is over: drop the callback into the cycle. (The cycle holds this input
        and the callback holds the cycle: without this, the pair — and through the cycle the
        connection and its buffers — would wait for the garbage collector.)"""
        self._ask = _nothing

    def _wake(self) -> None:
        if self._cond is not None:
            self._cond.notify()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # -- runs in a worker (the file-like API of PEP 3333) ----------------------------------------

    def read(self, size: int | None = -1) -> bytes:
        with self._lock:
            if size is None or size < 0:
                self._wait(sys.maxsize)
                return self._take(len(self._buffer))
            self._wait(size)
            return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None or size < 0 else size
        with self._lock:
            buffer = self._buffer
            scanned = 0
            while True:
                end = buffer.find(b"\n", scanned)
                if end >= 0:
                    end += 1
                    break
                if 0 <= limit <= len(buffer) or not self._more:
                    end = len(buffer)
                    break
                scanned = len(buffer)
                self._wait(scanned + 1)
            if limit >= 0:
                end = min(end, limit)
            return self._take(end)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def _wait(self, size: int) -> None:
        # Called with the lock held: returns once ``size`` bytes are buffered or the body is complete.
        while self._more and len(self._buffer) < size:
            if self._gone:
                raise ClientDisconnected("The client disconnected before sending the whole request body.")
            if not self._asked:
                self._asked = True
                self._ask()
            if self._cond is None:
                self._cond = threading.Condition(self._lock)
            self._cond.wait()

    def _take(self, size: int) -> bytes:
        buffer = self._buffer
        data = bytes(buffer[:size])
        del buffer[:size]
        return data


def _nothing() -> None:
    """The callback of a released input: nobody is asked for more body."""
