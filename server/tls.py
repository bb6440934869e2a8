"""TLS: the server's ``SSLContext``, and a protocol factory that wraps each accepted
connection in TLS and logs a failed handshake as one line.

Defaults are the modern ones: TLS 1.2 is the minimum (1.0 and 1.1 are deprecated by
RFC 8996), ciphers are Python's secure default list unless ``--ssl-ciphers`` says
otherwise, and ALPN advertises ``h2`` then ``http/1.1`` (only ``http/1.1`` with
``--no-http2``), so a client settles on the best both speak.

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
        ["h2", "http/1.1"] if config.http2 else ["http/1.1"],
    )


def create_ssl_context(
    certfile: str,
    keyfile: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    cert_reqs: int = ssl.CERT_NONE,
    ciphers: str | None = None,
    alpn: list[str] | None = None,
) -> ssl.SSLContext:
    """A server-side context; raises ``TLSConfigError`` with a one-line reason on bad input.
    ``alpn``: the protocols offered, best first (default: HTTP/1.1 only)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(alpn or ["http/1.1"])
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


# RFC 8446 / 5246: the protocol versions as they go on the wire, which the ASGI TLS
# extension reports.
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def server_certificate(certfile: str | None) -> str | None:
    """The server's own certificate (the first of the chain file) as PEM, for the ASGI TLS
    extension's ``server_cert``; read once at start-up."""
    if not certfile:
        return None
    try:
        with open(certfile, encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    end = "-----END CERTIFICATE-----"
    start = text.find("-----BEGIN CERTIFICATE-----")
    stop = text.find(end, start)
    return text[start : stop + len(end)] + "\n" if start >= 0 and stop >= 0 else None


def tls_extension(ssl_object: Any, server_cert: str | None) -> dict[str, Any]:
    """The ASGI TLS extension of a connection (``scope["extensions"]["tls"]``): the server's
    certificate, the client's chain (with ``--ssl-cert-reqs``) and its subject, the TLS
    version and the cipher suite, as the ASGI spec defines them. Computed once per connection."""
    verified = getattr(ssl_object, "get_verified_chain", None)  # Python 3.13+: the whole chain
    if verified is not None:
        certificates = verified()
    else:  # before 3.13, only the client's own certificate
        der = ssl_object.getpeercert(binary_form=True)
        certificates = [der] if der else []
    chain = [ssl.DER_cert_to_PEM_cert(der) for der in certificates]
    cipher = ssl_object.cipher()
    return {
        "server_cert": server_cert,
        "client_cert_chain": chain,
        "client_cert_name": _subject_name(ssl_object.getpeercert()) if chain else None,
        "client_cert_error": None,  # a client certificate that fails verification fails the handshake
        "tls_version": _TLS_VERSIONS.get(ssl_object.version()),
        "cipher_suite": _cipher_suite_ids().get(cipher[0]) if cipher else None,
    }


def _subject_name(certificate: dict | None) -> str | None:
    """The subject as an RFC 4514 string (most specific first, ``,`` between, specials escaped)."""
    if not certificate or "subject" not in certificate:
        return None
    names = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
             "stateOrProvinceName": "ST", "localityName": "L", "emailAddress": "emailAddress",
             "domainComponent": "DC", "userId": "UID", "streetAddress": "STREET"}
    parts = []
    for rdn in reversed(certificate["subject"]):
        parts.append("+".join(f"{names.get(key, key)}={_escape_rdn(value)}" for key, value in rdn))
    return ",".join(parts)


def _escape_rdn(value: str) -> str:
    escaped = "".join("\\" + ch if ch in ',+"\\<>;' else ch for ch in value)
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


_CIPHER_IDS: dict[str, int] = {}


def _cipher_suite_ids() -> dict[str, int]:
    """OpenSSL cipher name → the 16-bit TLS cipher suite number (the low half of OpenSSL's id)."""
    if not _CIPHER_IDS:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.set_ciphers("ALL:@SECLEVEL=0")
        _CIPHER_IDS.update({cipher["name"]: cipher["id"] & 0xFFFF for cipher in context.get_ciphers()})
    return _CIPHER_IDS
