"""Events the fast engine produces, and its errors — h11's vocabulary, with slots."""

from __future__ import annotations


class ProtocolError(Exception):
    """The message broke the protocol; ``status`` is the response a server should send."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    @property
    def error_status_hint(self) -> int:  # h11's name, so callers can treat both alike
        return self.status


class RemoteProtocolError(ProtocolError):
    """The client sent something invalid."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something invalid (a bug in the caller, not the client)."""


class Request:
    """A complete request head.

    ``headers`` are ``(lowercased name, value)`` pairs in the order received, duplicates
    kept — what h11 iterates and what ASGI wants. The framing facts the server needs
    are computed once, while the headers are scanned anyway.
    """

    __slots__ = (
        "method",
        "target",
        "http_version",
        "headers",
        "keep_alive",
        "content_length",
        "chunked",
        "expect_continue",
        "te_trailers",
        "upgrade",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        expect_continue: bool,
        te_trailers: bool = False,
        upgrade: bytes | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.te_trailers = te_trailers  # TE lists "trailers": the client takes trailer fields
        self.upgrade = upgrade  # the Upgrade field's value, if any (a WebSocket handshake)

    def __repr__(self) -> str:
        return f"Request(method={self.method!r}, target={self.target!r}, http_version={self.http_version!r})"


class Data:
    """A piece of request body, however the transfer split it."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data({self.data!r})"


class EndOfMessage:
    """The request body is complete; ``trailers`` are the chunked trailer fields, if any."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[bytes, bytes]]) -> None:
        self.trailers = trailers

    def __repr__(self) -> str:
        return f"EndOfMessage(trailers={self.trailers!r})"


class ConnectionClosed:
    """The client closed its side between requests."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ConnectionClosed()"


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")  # feed more bytes with receive_data()
PAUSED = _Sentinel("PAUSED")  # the request is complete; call start_next_cycle() after responding
# Shared, immutable-by-convention instances: most requests have no trailers, and a closed
# connection has nothing more to say. Reused so the hot path allocates nothing for them.
END_OF_MESSAGE = EndOfMessage([])
CONNECTION_CLOSED = ConnectionClosed()
