"""``Limits``: what a connection's parser holds its client to, in one record.

The server makes one from its options (server/http1/parsers.py), and both engines enforce it
with the same code (head.py judges heads, chunks.py chunk-size lines), so a limit means the
same whichever engine reads the request. The defaults are the server's own, each with its
precedent in server/config/options.py (tests/test_http1_rules.py checks that they agree).
"""

from __future__ import annotations

from typing import NamedTuple

# 16 KiB: h11's default max_incomplete_event_size, and what most servers accept for a head.
DEFAULT_MAX_HEAD_SIZE = 16 * 1024


class Limits(NamedTuple):
    """Sizes are bytes, on the wire (CRLFs included); ``None`` is no limit."""

    head_size: int = DEFAULT_MAX_HEAD_SIZE  # request line + fields (431; 414 for the line alone); trailers too
    fields: int = 100  # field lines in a head (431)
    body_size: int | None = None  # a chunked body is refused (413) at the chunk that would pass it
    chunk_extension_size: int = 4096  # chunk extensions on one chunk-size line (413)
    chunk_extension_total: int = 16384  # chunk extensions in one body (413)
    bare_lf: bool = False  # take a bare LF as a line end in heads and trailers (RFC 9112 2.2 MAY)


DEFAULT_LIMITS = Limits()
