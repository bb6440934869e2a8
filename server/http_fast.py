"""The HTTP/1.1 connection on the fast engine (``--http fast``, the default): ``H11Protocol``
with the parser swapped for ``server.fastparse``.

Everything but parsing is shared with the h11 engine — timers, flow control, the
``Channel`` the request cycles talk to, response rendering, closing — so the two engines
cannot drift apart in behaviour; the test suite runs against both. What differs is the
parser's grammar, where fastparse is stricter than h11 in the ways docs/server.md lists
(obs-fold, TE in HTTP/1.0, TE not ending in chunked, request-target forms, chunk extensions).

Discussion: a fresh ``ServerConnection`` per request, as for h11, keeps the parser's state
machine out of the response path (the protocol renders responses itself); it costs one
small object per request, against the ~30 µs of h11 parsing it replaces.
"""

from __future__ import annotations

from server import fastparse
from server.http11 import H11Protocol


class FastProtocol(H11Protocol):
    _ProtocolError = fastparse.RemoteProtocolError
    _Request = fastparse.Request
    _Data = fastparse.Data
    _EndOfMessage = fastparse.EndOfMessage
    _NEED_DATA = fastparse.NEED_DATA

    def _new_parser(self) -> fastparse.ServerConnection:
        return fastparse.ServerConnection(self.config.limit_request_head_size)
