"""The chunk-size lines of one chunked body, judged: their grammar, and what they may cost.

Both engines read chunked framing their own way (the fast one in connection.py, h11 in its
reader) and hand every chunk-size line here, so one set of rules decides:

- the grammar of RFC 9112 7.1 and 7.1.1 (grammar.chunk_size_line): hex digits, then
  ``;name`` or ``;name=value`` extensions, nothing else — no whitespace before the CRLF,
  no bare CR, no NUL;
- the extensions' cost. They are read and dropped, so no body limit sees them: a client
  could send megabytes of extensions around one byte of data (Go CVE-2023-39326, Node
  CVE-2024-22019). RFC 9112 7.1.1: "A server ought to limit the total length of chunk
  extensions received in a request to an amount reasonable for the services provided ...
  and generate an appropriate 4xx (Client Error) response if that amount is exceeded."
  So: at most ``chunk_extension_size`` bytes on one line and ``chunk_extension_total`` in
  the body, else 413 (as Node answers);
- the size: at most MAX_CHUNK_SIZE, and a chunk that would take the body past the body
  limit is refused when its size line arrives (413), before any of its data is read.
"""

from __future__ import annotations

from treadle.server.http1.fastparse import grammar
from treadle.server.http1.fastparse.events import RemoteProtocolError
from treadle.server.http1.fastparse.limits import Limits


class ChunkBudget:
    """The judge of one body's chunk-size lines; it counts extension and body bytes as it goes."""

    __slots__ = ("_limits", "_extensions", "_body", "max_line")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._extensions = 0  # extension bytes in this body so far
        self._body = 0  # body bytes the chunks so far announced
        # The longest line that may still be valid, CRLF not included.
        self.max_line = grammar.MAX_CHUNK_SIZE_DIGITS + limits.chunk_extension_size

    def size(self, line: bytes, start: int, end: int) -> int:
        """The size a chunk-size line ``line[start:end]`` (without its CRLF) announces;
        raises ``RemoteProtocolError`` (400 invalid, 413 over a limit)."""
        if end - start > self.max_line:
            raise self.overlong(line[start:end])
        match = grammar.chunk_size_line(line, start, end)
        if match is None:
            raise RemoteProtocolError(f"invalid chunk size line {bytes(line[start:end])!r}")
        limits = self._limits
        extensions = end - match.end(1)
        if extensions:
            if extensions > limits.chunk_extension_size:
                raise _extensions_too_long(f"{extensions} bytes of chunk extensions on one chunk", limits)
            self._extensions += extensions
            if self._extensions > limits.chunk_extension_total:
                raise _extensions_too_long(f"{self._extensions} bytes of chunk extensions in one body", limits)
        size = int(match.group(1), 16)
        if size > grammar.MAX_CHUNK_SIZE:
            raise RemoteProtocolError(f"chunk size {size} is larger than any body ({grammar.MAX_CHUNK_SIZE})")
        body = self._body + size
        if limits.body_size is not None and body > limits.body_size:
            raise RemoteProtocolError(f"chunked body longer than {limits.body_size} bytes", 413)
        self._body = body
        return size

    def overlong(self, line: bytes) -> RemoteProtocolError:
        """The error for a chunk-size line (complete or not) longer than any valid one: 413 if
        it is long for its extensions, else 400."""
        limits = self._limits
        if grammar.starts_chunk_extensions(line) is not None:
            return _extensions_too_long(f"more than {limits.chunk_extension_size} bytes of chunk extensions", limits)
        return RemoteProtocolError(f"invalid chunk size line {bytes(line[:32])!r}...")


def _extensions_too_long(what: str, limits: Limits) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{what} (limits: {limits.chunk_extension_size} per chunk, {limits.chunk_extension_total} per body)", 413
    )
