"""TLS for the tests: a trustme CA, certificate files for 127.0.0.1, and contexts that trust them.

The fixtures ``ca`` and ``certs`` are in conftest.py; these are the plain helpers.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme


def write_certs(ca: trustme.CA, directory: Path) -> dict[str, str]:
    """Server certificate and key files for 127.0.0.1, the CA file, and a client certificate."""
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "ca": directory / "ca.pem",
        "client": directory / "client.pem",
    }
    server_cert.cert_chain_pems[0].write_to_path(paths["cert"])
    for pem in server_cert.cert_chain_pems[1:]:
        pem.write_to_path(paths["cert"], append=True)
    server_cert.private_key_pem.write_to_path(paths["key"])
    ca.cert_pem.write_to_path(paths["ca"])
    ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(paths["client"])
    return {name: str(path) for name, path in paths.items()}


def tls_options(certs: dict[str, str], **extra: object) -> dict[str, object]:
    return dict(ssl_certfile=certs["cert"], ssl_keyfile=certs["key"], **extra)


def client_context(certs: dict[str, str], client_cert: bool = False, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs["ca"])
    if client_cert:
        context.load_cert_chain(certs["client"])
    if alpn:
        context.set_alpn_protocols(alpn)
    return context
