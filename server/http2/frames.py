"""``FrameGuard``: a look at each frame header a client sends, before ``h2`` parses the frames,
for the limits h2 leaves to its user.

h2 assembles a header block from HEADERS and up to 64 CONTINUATION frames before it decodes
it, so a block may grow to 64 × the frame size (1 MiB) before anything looks at it: the
CONTINUATION flood of CVE-2024-27316. And it answers PING and SETTINGS by itself, however
many arrive. The guard reads only the 9-byte frame headers (RFC 9113 4.1) as bytes arrive,
so it costs a few operations per frame:

- a header block (HEADERS or PUSH_PROMISE, then CONTINUATION frames up to END_HEADERS) is
  held to ``max_block`` bytes, whatever its split into frames;
- PING, SETTINGS (not their ACKs) and PRIORITY frames, which cost the server work or an
  answer and carry no request, are reported to ``on_control``; RST_STREAM to ``on_reset``
  (the connection charges them to its budgets: server/http2/budget.py). A report answered
  False spent a budget: the scan stops there, and the connection ends before h2 has parsed
  a frame of that read — a flood of four thousand PINGs in one read costs one scan, not four
  thousand answers;
- and it says where to cut a read for h2 every ``SLICE_FRAMES`` frames: h2 parses a read whole
  before its events can be looked at, so a read of thousands of small frames goes to it in
  slices, and a budget spent by what only h2 sees (a reset it sends for a broken frame)
  stops the parsing at the end of the slice. Large DATA frames pass in one slice.

Frame bodies are never looked at: h2 validates everything else.
"""

from __future__ import annotations

from typing import Callable

Report = Callable[[], bool]  # False: the frame spent a budget
SLICE_FRAMES = 64  # frames h2 parses at once (see the docstring)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 3.4, before the first frame

# RFC 9113 6: frame types and the flags read here.
_HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS, _PUSH_PROMISE, _PING, _CONTINUATION = 1, 2, 3, 4, 5, 6, 9
_END_HEADERS = 0x4
_ACK = 0x1


class HeaderBlockTooLarge(Exception):
    """A header block grew past the limit across its HEADERS and CONTINUATION frames."""


class FrameGuard:
    __slots__ = ("max_block", "on_control", "on_reset", "_skip", "_head", "_left", "_block", "_frames")

    def __init__(self, max_block: int, on_control: Report, on_reset: Report) -> None:
        self.max_block = max_block
        self.on_control = on_control
        self.on_reset = on_reset
        self._skip = len(PREFACE)  # the client's connection preface comes first
        self._head = b""  # a frame header received in part
        self._left = 0  # payload bytes of the current frame still to pass
        self._block = -1  # bytes of the header block being received; -1: none open
        self._frames = 0  # frames begun since the last cut

    def scan(self, data: bytes) -> list[int] | None:
        """Account for ``data``, the next bytes from the client, up to a frame that spends a
        budget; HeaderBlockTooLarge if a header block is over the limit. Returns the offsets
        at which to cut ``data`` for h2 (None: give it whole)."""
        cuts = None
        pos, end = 0, len(data)
        if self._skip:
            pos = min(self._skip, end)
            self._skip -= pos
        while pos < end:
            left = self._left
            if left:
                step = min(left, end - pos)
                self._left = left - step
                pos += step
                continue
            if self._head or end - pos < 9:
                take = 9 - len(self._head)
                head = self._head + data[pos : pos + take]
                pos += take
                if len(head) < 9:
                    self._head = head
                    return cuts
                self._head = b""
            else:
                head = data[pos : pos + 9]
                self._frames += 1
                if self._frames > SLICE_FRAMES:  # (a header split across reads is never a cut)
                    self._frames = 1
                    if pos:
                        cuts = [pos] if cuts is None else cuts + [pos]
                pos += 9
            length = int.from_bytes(head[:3], "big")
            self._left = length
            if not self._frame(head[3], head[4], length):
                return cuts
        return cuts

    def _frame(self, kind: int, flags: int, length: int) -> bool:
        if kind == _HEADERS or kind == _PUSH_PROMISE:
            self._grow(0, flags, length)
        elif kind == _CONTINUATION:
            self._grow(max(self._block, 0), flags, length)  # one outside a block: h2 refuses it
        elif kind == _RST_STREAM:
            return self.on_reset()
        elif kind == _PING or kind == _SETTINGS:
            if not flags & _ACK:
                return self.on_control()
        elif kind == _PRIORITY:
            return self.on_control()
        return True

    def _grow(self, block: int, flags: int, length: int) -> None:
        block += length
        if block > self.max_block:
            raise HeaderBlockTooLarge(f"header block over {self.max_block} bytes")
        self._block = -1 if flags & _END_HEADERS else block
