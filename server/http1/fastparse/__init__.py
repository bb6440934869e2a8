"""A pure-Python, sans-I/O HTTP/1.1 request parser: h11's receiving side, tuned for speed.

``ServerConnection`` turns received bytes into ``Request`` / ``Data`` / ``EndOfMessage`` /
``ConnectionClosed`` events, enforcing what RFC 9112 requires a server to reject; its
events, with the framing facts a server needs already worked out, are the vocabulary of
both HTTP/1.1 engines (server/http1/parsers.py). Responses are rendered by
server/http1/writer.py. It is proven against h11 by differential tests
(tests/test_fastparse_differential.py); where it deliberately differs from h11, the rule
and the RFC section are next to the code that decides.
"""

from treadle.server.http1.fastparse.connection import (
    BODY,
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    ServerConnection,
)
from treadle.server.http1.fastparse.events import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Request,
)
from treadle.server.http1.fastparse.limits import DEFAULT_LIMITS, DEFAULT_MAX_HEAD_SIZE, Limits

__all__ = [
    "BODY",
    "CLOSED",
    "CONNECTION_CLOSED",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_HEAD_SIZE",
    "DONE",
    "END_OF_MESSAGE",
    "ERROR",
    "IDLE",
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Limits",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "ServerConnection",
]
