"""Which protocol a new connection speaks: HTTP/2 or HTTP/1.1 (with ``--http2``, the default).

- Over TLS, ALPN has decided by the time the connection is made (RFC 7301): ``h2`` is
  HTTP/2, anything else (``http/1.1``, or nothing) HTTP/1.1.
- In cleartext, the client's first bytes decide (RFC 9113 3.3, "prior knowledge"): the
  HTTP/2 connection preface, ``PRI * HTTP/2.0...``, which no HTTP/1.1 request can start
  with, is HTTP/2; anything else HTTP/1.1. Until those bytes are in, the HTTP/1.1
  connection already keeps its deadlines (a client that sends nothing is timed as ever).
- An HTTP/1.1 request may still ask to upgrade (``Upgrade: h2c``): that is the HTTP/1.1
  connection's to decide (server/http1/connection.py, ``handle_upgrade``).

``Negotiator`` is the protocol the transport starts with; once it knows, it hands the
transport to the chosen connection (``transport.set_protocol``) and steps aside.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from treadle.server.http2.frames import PREFACE


class Negotiator(asyncio.Protocol):
    """Starts every connection; becomes an ``Http1Connection`` or an ``Http2Connection``."""

    __slots__ = ("make_http1", "make_http2", "transport", "http1", "_seen")

    def __init__(self, make_http1: Callable[[], Any], make_http2: Callable[[], Any]) -> None:
        self.make_http1 = make_http1
        self.make_http2 = make_http2
        self.transport: Any = None
        self.http1: Any = None
        self._seen = b""  # the first bytes, while they might still be the preface

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            chosen = self.make_http2() if ssl_object.selected_alpn_protocol() == "h2" else self.make_http1()
            transport.set_protocol(chosen)
            chosen.connection_made(transport)
            return
        self.http1 = self.make_http1()
        self.http1.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        seen = self._seen + data
        if len(seen) < len(PREFACE) and PREFACE.startswith(seen):
            self._seen = seen  # too early to tell
            return
        self._seen = b""
        transport = self.transport
        if seen.startswith(PREFACE):
            self.http1.hand_over()
            http2 = self.make_http2()
            transport.set_protocol(http2)
            http2.connection_made(transport)
            http2.data_received(seen)
        else:
            transport.set_protocol(self.http1)
            self.http1.data_received(seen)

    # Until it steps aside, the HTTP/1.1 connection is the one the rest of the server knows.

    def eof_received(self) -> bool | None:
        return self.http1.eof_received()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.http1.connection_lost(exc)

    def pause_writing(self) -> None:
        self.http1.pause_writing()

    def resume_writing(self) -> None:
        self.http1.resume_writing()
