"""The HTTP/1.1 connection on the fast engine (``--http fast``, the default): ``H11Protocol``
with the parser swapped for ``server.fastparse``.

Everything but parsing is shared with the h11 engine — timers, flow control, the
``Channel`` the request cycles talk to, response rendering, closing — so the two engines
cannot drift apart in behaviour; the test suite runs against both. What differs is the
parser's grammar, where fastparse is stricter than h11 in the ways docs/server.md lists
(obs-fold, TE in HTTP/1.0, TE not ending in chunked, request-target forms, chunk extensions).

Discussion: the protocol renders responses itself, so the parser's response half is never
used; between requests the parser is told only that the request is over (``next_request``)
and is reused, where the h11 engine makes a new ``h11.Connection``.
"""

from __future__ import annotations

from treadle.server.http1 import fastparse
from treadle.server.http1.connection import H11Protocol


class FastProtocol(H11Protocol):
    _ProtocolError = fastparse.RemoteProtocolError
    _Request = fastparse.Request
    _Data = fastparse.Data
    _EndOfMessage = fastparse.EndOfMessage
    _NEED_DATA = fastparse.NEED_DATA

    def _request_facts(self, event: fastparse.Request) -> tuple:
        # The parser has validated the framing and worked out these facts while scanning
        # the head, and held a whole head to the size limit: nothing is left to check here.
        version = "1.0" if event.http_version == b"1.0" else "1.1"
        return (
            event.headers,
            version,
            event.keep_alive,
            event.content_length,
            event.chunked,
            event.te_trailers,
            event.upgrade,
            0,
        )

    def _restart_parser(self) -> bool:
        conn = self.conn
        conn.next_request()  # the same parser, reused: nothing to allocate between requests
        return bool(conn.trailing_data[0])

    def _new_parser(self) -> fastparse.ServerConnection:
        return fastparse.ServerConnection(self.config.limit_request_head_size)
