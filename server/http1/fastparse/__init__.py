"""A pure-Python, sans-I/O HTTP/1.1 server engine: h11's job, tuned for speed.

``ServerConnection`` turns received bytes into ``Request`` / ``Data`` / ``EndOfMessage`` /
``ConnectionClosed`` events and responses into bytes, enforcing what RFC 9112 requires a
server to reject. It is proven against h11 by differential tests
(tests/test_fastparse_differential.py); where it deliberately differs from h11, the rule
and the RFC section are next to the code that decides.
"""

from treadle.server.http1.fastparse.connection import (
    BODY,
    CLOSED,
    DEFAULT_MAX_HEAD_SIZE,
    DONE,
    ERROR,
    IDLE,
    ServerConnection,
)
from treadle.server.http1.fastparse.events import (
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

__all__ = [
    "BODY",
    "CLOSED",
    "DEFAULT_MAX_HEAD_SIZE",
    "DONE",
    "ERROR",
    "IDLE",
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "ServerConnection",
]
