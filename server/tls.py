"""TLS: the server's ``SSLContext``, and a protocol factory that wraps each accepted
connection in TLS and logs a failed handshake as one line.

Defaults are the modern ones: TLS 1.2 is the minimum (1.0 and 1.1 are deprecated by
RFC 8996), ciphers are Python's secure default list unless ``--ssl-ciphers`` says
otherwise, and ALPN advertises ``http/1.1`` so clients that offer h2 settle on what we
speak.

Discussion: the reactor's ``create_server(ssl=...)`` would do the wrapping too, but asyncio's
TLS protocol reports a failed handshake only in loop debug mode, so an operator would never
see a client that fails to verify, or a scanner speaking plain HTTP to the TLS port. Wrapping
in the protocol factory is the same code path plus a waiter we read ourselves. A failure only
ever affects its own connection.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from typing import Any, Callable

from treadle.server.config import Config
from treadle.server.observe.logging import error_logger


class TLSConfigError(Exception):
    """The certificate, key, CA file or cipher string could not be used."""


def server_ssl_context(config: Config) -> ssl.SSLContext | None:
    """The context the ``ssl_*`` options describe (``TLSConfigError`` if unusable); None
    without a certificate."""
    if not config.ssl_certfile:
        return None
    return create_ssl_context(
        config.ssl_certfile,
        config.ssl_keyfile,
        config.ssl_keyfile_password,
        config.ssl_ca_certs,
        config.ssl_cert_reqs,
        config.ssl_ciphers,
    )


def create_ssl_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    cert_reqs: int = ssl.CERT_NONE,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A server-side context; raises ``TLSConfigError`` with a one-line reason on bad input."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as exc:
        files = certfile if keyfile is None else f"{certfile} / {keyfile}"
        raise TLSConfigError(f"Cannot load TLS certificate and key ({files}): {_reason(exc)}")
    if ca_certs:
        try:
            context.load_verify_locations(ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"Cannot load CA certificates ({ca_certs}): {_reason(exc)}")
    context.verify_mode = ssl.VerifyMode(cert_reqs)
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError as exc:
            raise TLSConfigError(f"Invalid TLS cipher string {ciphers!r}: {_reason(exc)}")
    return context


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)


def tls_protocol_factory(
    factory: Callable[[], asyncio.BaseProtocol],
    context: ssl.SSLContext,
    handshake_timeout: float,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[], asyncio.BaseProtocol]:
    """Wrap ``factory`` so each connection first completes a TLS handshake (within
    ``handshake_timeout`` seconds); the wrapped protocol sees plaintext."""

    def make() -> asyncio.BaseProtocol:
        waiter = loop.create_future()
        protocol = _ServerTLSProtocol(
            loop, factory(), context, waiter, server_side=True, ssl_handshake_timeout=handshake_timeout
        )
        waiter.add_done_callback(protocol.handshake_done)
        return protocol

    return make


class _ServerTLSProtocol(sslproto.SSLProtocol):
    """asyncio's TLS protocol, remembering the peer so a failed handshake can name it."""

    peer: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.peer = transport.get_extra_info("peername")
        super().connection_made(transport)

    def handshake_done(self, waiter: asyncio.Future) -> None:
        if waiter.cancelled():
            return
        exc = waiter.exception()  # retrieving it also keeps asyncio from warning about it
        if exc is not None:
            error_logger.debug("TLS handshake with %s failed: %s", _address(self.peer), _reason(exc))


def _address(peer: Any) -> str:
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "a Unix socket peer" if peer is not None else "an unknown peer"
