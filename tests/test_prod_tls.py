"""TLS: HTTPS with a trustme CA, ALPN, client certificates, failed and slow handshakes,
and clear errors for unusable certificates."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import time

import httpx
import pytest
from conftest import wait_until
from prod_apps import info
from prod_support import Proc
from tls_support import client_context, tls_options
from ws_helpers import wss_session

from treadle.server.tls import TLSConfigError, create_ssl_context


def test_https_scope_scheme_and_alpn(serve, certs):
    running = serve(info, **tls_options(certs))
    context = client_context(certs)
    context.set_alpn_protocols(["h2", "http/1.1"])
    response = httpx.get(f"https://127.0.0.1:{running.port}/x", verify=context, timeout=5)
    assert response.status_code == 200
    assert json.loads(response.text)["scheme"] == "https"
    context = client_context(certs, alpn=["h2", "http/1.1"])  # (httpx set its own ALPN on the last one)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"  # HTTP/2 first, where the client offers it
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    http1_only = serve(info, http2=False, **tls_options(certs))
    with socket.create_connection(("127.0.0.1", http1_only.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(serve, certs):
    running = serve(info, **tls_options(certs))
    context = client_context(certs)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert httpx.get(f"https://127.0.0.1:{running.port}/", verify=client_context(certs)).status_code == 200


def test_client_certificate_required(serve, certs, caplog):
    caplog.set_level(logging.DEBUG, logger="treadle.error")
    running = serve(info, **tls_options(certs, ssl_ca_certs=certs["ca"], ssl_cert_reqs=ssl.CERT_REQUIRED))
    url = f"https://127.0.0.1:{running.port}/"
    assert httpx.get(url, verify=client_context(certs, client_cert=True), timeout=5).status_code == 200
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        # TLS 1.3 reports the missing certificate after the handshake, on the first read.
        httpx.get(url, verify=client_context(certs), timeout=5)
    wait_until(lambda: "TLS handshake with 127.0.0.1:" in caplog.text)
    # Another client is not disturbed by the failure.
    assert httpx.get(url, verify=client_context(certs, client_cert=True), timeout=5).status_code == 200


def test_plain_http_to_the_tls_port_is_logged_and_dropped(serve, certs, caplog):
    caplog.set_level(logging.DEBUG, logger="treadle.error")
    running = serve(info, **tls_options(certs))
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(5)
        try:
            data = raw.recv(1024)
        except ConnectionResetError:
            data = b""
        assert b"HTTP/1.1 200" not in data
    line = wait_until(lambda: [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()])
    assert len(line) == 1 and "\n" not in line[0]


def test_handshake_timeout_closes_a_silent_connection(serve, certs, caplog):
    caplog.set_level(logging.DEBUG, logger="treadle.error")
    running = serve(info, **tls_options(certs, ssl_handshake_timeout=0.3))
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
        started = time.monotonic()
        assert raw.recv(1024) == b""  # closed by the server without a byte from us
        assert time.monotonic() - started < 3.0
    wait_until(lambda: "taking longer than 0.3 seconds" in caplog.text)


def test_create_ssl_context_errors_are_one_line(tmp_path, certs):
    with pytest.raises(TLSConfigError, match="Cannot load TLS certificate and key") as info_:
        create_ssl_context(str(tmp_path / "missing.pem"))
    assert "\n" not in str(info_.value)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TLSConfigError, match="Cannot load TLS certificate"):
        create_ssl_context(str(garbage), certs["key"])
    with pytest.raises(TLSConfigError, match="Invalid TLS cipher string"):
        create_ssl_context(certs["cert"], certs["key"], ciphers="NO-SUCH-CIPHER")
    context = create_ssl_context(certs["cert"], certs["key"])
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_encrypted_key_needs_its_password(tmp_path, ca):
    from cryptography.hazmat.primitives import serialization

    cert = ca.issue_cert("127.0.0.1")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"sesame"),
    )
    (tmp_path / "key.pem").write_bytes(encrypted)
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    create_ssl_context(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), password="sesame")
    with pytest.raises(TLSConfigError):
        create_ssl_context(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), password="wrong")


def test_bad_certificate_is_one_line_and_exit_1(tmp_path):
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--ssl-certfile", str(tmp_path / "nope.pem"))
    try:
        assert proc.finish() == 1
        assert len(proc.seen) == 1 and "Cannot load TLS certificate" in proc.seen[0], proc.output()
    finally:
        proc.kill_group()


def test_cli_serves_https(certs):
    proc = Proc.treadle(
        "prod_apps:info", "--port", "0", "--ssl-certfile", certs["cert"], "--ssl-keyfile", certs["key"]
    )
    try:
        port = int(proc.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1))
        response = httpx.get(f"https://127.0.0.1:{port}/", verify=client_context(certs), timeout=5)
        assert json.loads(response.text)["scheme"] == "https"
    finally:
        proc.kill_group()


def test_wsgi_and_websocket_scopes_say_https_and_wss(serve, certs):
    from wsgi_apps import environ_app

    wsgi = serve(environ_app, interface="wsgi", **tls_options(certs))
    environ = httpx.get(f"https://127.0.0.1:{wsgi.port}/", verify=client_context(certs), timeout=5).json()
    assert environ["wsgi.url_scheme"] == "https"

    async def ws_app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["scheme"]})
        await send({"type": "websocket.close"})

    async def talk(connection):
        return await connection.recv()

    ws = serve(ws_app, **tls_options(certs))
    assert wss_session(f"wss://127.0.0.1:{ws.port}/", client_context(certs), talk) == "wss"


class _HandDrivenTLSClient:
    """A TLS client whose bytes the test moves itself: an SSLObject over memory BIOs, a socket."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")

    def flush(self) -> None:
        self.sock.sendall(self.outgoing.read())

    def receive(self) -> bool:
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        return bool(data)

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                assert self.receive(), "the server closed during the handshake"
        self.flush()  # the client's Finished: the server completes its side and sends its tickets

    def read_until_closed(self) -> bytes:
        """All plaintext the server sends before it closes (or its TLS fails)."""
        plaintext = b""
        while self.receive():
            try:
                while True:
                    data = self.tls.read(65536)
                    if not data:
                        return plaintext  # the server's close_notify
                    plaintext += data
            except ssl.SSLWantReadError:
                continue
            except ssl.SSLError:
                break
        return plaintext


@pytest.mark.skipif(
    not (ssl.HAS_TLSv1_3 and hasattr(ssl.SSLContext, "_msg_callback")),
    reason="needs TLS 1.3 and OpenSSL's message callback",
)
def test_a_write_while_the_client_processes_tickets_is_lost(serve, certs):
    """Why the wss tests use websockets' asyncio client (tests/ws_helpers.py ``wss_session``),
    made deterministic: the flake of the sync client, and that the server is not its cause.

    Right after a TLS 1.3 handshake the server sends its session tickets (OpenSSL sends 2).
    The sync client processes them in its reading thread while the caller's thread writes the
    upgrade request, both on one OpenSSL object, which OpenSSL does not allow: while it
    processes a ticket, outgoing records go to a buffer that is then discarded. Under load the
    write sometimes lands there. Here it always does, made from OpenSSL's message callback in
    the middle of reading the ticket: the write reports success, no byte leaves the client, and
    the connection is ruined (the next record is out of sequence). The same request written
    outside that moment is answered.
    """
    requests = []

    async def app(scope, receive, send):
        requests.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    running = serve(app, **tls_options(certs))
    request = b"GET /lost HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    written: list[int] = []
    client: _HandDrivenTLSClient | None = None

    def during_ticket(conn, direction, version, content_type, msg_type, data):
        ticket = content_type == ssl._TLSContentType.HANDSHAKE and msg_type == ssl._TLSMessageType.NEWSESSION_TICKET
        if direction == "read" and ticket and not written:
            written.append(client.tls.write(request))  # where the sync client's other thread writes

    context = client_context(certs)
    context._msg_callback = during_ticket  # copied into each connection when it is made
    client = _HandDrivenTLSClient(running.port, context)
    with client.sock:
        client.handshake()
        while not written:  # the tickets follow the handshake at once
            assert client.receive(), "the server closed without sending session tickets"
            try:
                client.tls.read(65536)
            except ssl.SSLWantReadError:
                pass
        assert written == [len(request)]  # reported as written...
        assert client.outgoing.pending == 0  # ...but nothing is left to send: it is gone
        client.tls.write(request)  # again, now the ticket is processed: too late, out of sequence
        client.flush()
        assert client.read_until_closed() == b""
    assert requests == []

    client = _HandDrivenTLSClient(running.port, client_context(certs))
    with client.sock:
        client.handshake()
        client.tls.write(request.replace(b"/lost", b"/answered"))
        client.flush()
        assert client.read_until_closed().startswith(b"HTTP/1.1 200")
    assert requests == ["/answered"]
