"""The Reactor's networking on real sockets (127.0.0.1 and Unix sockets): transports, flow
control, TLS, sendfile, servers, and signal handlers.

Every wait is on a condition with a deadline; nothing sleeps in the hope that work got done.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import socket
import ssl
import sys
import tempfile
import threading

import pytest
import trustme

from treadle import reactor


@pytest.fixture
def loop():
    loop = reactor.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def run(loop, coro, timeout: float = 10.0):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Collector(asyncio.Protocol):
    """Records what a transport delivers; futures settle on EOF and on connection loss."""

    def __init__(self, loop, keep_open_on_eof: bool = False) -> None:
        self.loop = loop
        self.keep_open_on_eof = keep_open_on_eof
        self.transport = None
        self.data = bytearray()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.paused = 0
        self.resumed = 0
        self.got_bytes = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.got_bytes.set()

    def eof_received(self):
        if not self.eof.done():
            self.eof.set_result(bytes(self.data))
        return self.keep_open_on_eof  # True: half-close, the test decides when to close

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    async def wait_for_bytes(self, count: int) -> bytes:
        while len(self.data) < count:
            self.got_bytes.clear()
            await self.got_bytes.wait()
        return bytes(self.data)


async def _server_and_client(loop, server_factory=None, **server_kwargs):
    accepted = loop.create_future()

    def factory():
        proto = (server_factory or (lambda: Collector(loop)))()
        if not accepted.done():
            accepted.set_result(proto)
        return proto

    server = await loop.create_server(factory, "127.0.0.1", 0, **server_kwargs)
    port = server.sockets[0].getsockname()[1]
    return server, port, accepted


# ---------------------------------------------------------------------- transports


def test_write_writelines_write_eof_and_peer_sees_eof(loop) -> None:
    async def main():
        server, port, accepted = await _server_and_client(loop, lambda: Collector(loop, keep_open_on_eof=True))
        transport, client = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        assert transport.can_write_eof()
        transport.write(b"one ")
        transport.writelines([b"two ", bytearray(b"three "), memoryview(b"four")])
        transport.write_eof()
        with pytest.raises(RuntimeError):
            transport.write(b"after eof")
        peer = await accepted
        assert await peer.eof == b"one two three four"
        # Half-closed: the server can still answer.
        peer.transport.write(b"reply")
        assert await client.wait_for_bytes(5) == b"reply"
        peer.transport.close()
        await client.eof
        transport.close()
        await client.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_abort_drops_buffer_and_peer_sees_connection_end(loop) -> None:
    async def main():
        server, port, accepted = await _server_and_client(loop)
        transport, client = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        peer = await accepted
        peer.transport.pause_reading()  # let the client's buffer fill
        transport.write(b"x" * (8 * 1024 * 1024))
        assert transport.get_write_buffer_size() > 0
        transport.abort()
        assert transport.is_closing()
        assert await client.lost is None
        assert transport.get_write_buffer_size() == 0
        peer.transport.resume_reading()
        await peer.lost  # RST or EOF: either way the server's side ends and closes
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_pause_and_resume_reading(loop) -> None:
    async def main():
        server, port, accepted = await _server_and_client(loop)
        transport, client = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        peer = await accepted
        peer.transport.pause_reading()
        assert not peer.transport.is_reading()
        transport.write(b"while paused")
        # The bytes reach the server's socket but not its protocol until reading resumes.
        probe = socket.socket(fileno=os.dup(peer.transport.get_extra_info("socket").fileno()))
        peeked = b""
        try:
            for _ in range(500):  # up to 5 s for the bytes to cross loopback
                try:
                    peeked = probe.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                except BlockingIOError:
                    peeked = b""
                if len(peeked) == 12:
                    break
                await asyncio.sleep(0.01)  # lets the loop run: a paused transport must not read
        finally:
            probe.close()  # closes only the duplicate descriptor
        assert peeked == b"while paused", "the bytes never reached the server's socket"
        assert bytes(peer.data) == b""
        peer.transport.resume_reading()
        assert peer.transport.is_reading()
        assert await peer.wait_for_bytes(12) == b"while paused"
        transport.close()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_write_buffer_limits_and_pause_writing_for_a_slow_reader(loop) -> None:
    async def main():
        server, port, accepted = await _server_and_client(loop)
        transport, client = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        peer = await accepted
        peer.transport.pause_reading()  # a reader that does not read
        transport.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=1, low=2)
        chunk = b"y" * 65536
        total = 0
        while client.paused == 0:
            transport.write(chunk)
            total += len(chunk)
            assert total < 256 * 1024 * 1024, "pause_writing never came"
        assert transport.get_write_buffer_size() > 64 * 1024
        assert client.resumed == 0
        peer.transport.resume_reading()  # the reader catches up: the buffer drains
        await peer.wait_for_bytes(total)
        assert client.resumed == 1
        assert transport.get_write_buffer_size() == 0
        assert bytes(peer.data) == b"y" * total
        transport.close()
        server.close()
        await server.wait_closed()

    run(loop, main(), timeout=30)


def test_buffered_writes_keep_their_order_and_bytes_their_owners_change_afterwards(loop) -> None:
    # The write buffer keeps the pieces written (reactor/transports.py): bytes as they are,
    # a bytearray or memoryview copied, since its owner may reuse it once write() returns;
    # writelines() sends its pieces with one sendmsg(); partial sends drop a prefix.
    async def main():
        server, port, accepted = await _server_and_client(loop)
        transport, client = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        peer = await accepted
        peer.transport.pause_reading()  # fill the kernel's buffers, so that writes are kept
        filler = bytes(range(256)) * 1024
        expected = bytearray()
        while not transport.get_write_buffer_size():
            transport.write(filler)
            expected += filler
            assert len(expected) < 256 * 1024 * 1024, "the kernel never refused"
        reused = bytearray(b"a" * 1000)
        transport.write(reused)
        reused[:] = b"b" * 1000  # changed after write(): what was written must not change
        view = memoryview(bytearray(b"c" * 500))
        transport.writelines([b"head:", view, b"", bytearray(b"tail")])
        view[:] = b"d" * 500
        expected += b"a" * 1000 + b"head:" + b"c" * 500 + b"tail"
        buffered = transport.get_write_buffer_size()
        assert buffered >= 1000 + 5 + 500 + 4
        peer.transport.resume_reading()
        assert await peer.wait_for_bytes(len(expected)) == bytes(expected)
        assert transport.get_write_buffer_size() == 0
        # Nothing buffered: writelines() goes out at once, in order.
        transport.writelines([b"x" * 70000, b"y", memoryview(b"z" * 3)])
        expected += b"x" * 70000 + b"y" + b"zzz"
        assert await peer.wait_for_bytes(len(expected)) == bytes(expected)
        transport.close()
        server.close()
        await server.wait_closed()

    run(loop, main(), timeout=30)


def test_streams_echo_with_drain(loop) -> None:
    async def main():
        async def handle(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = os.urandom(2 * 1024 * 1024)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        echoed = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return echoed, payload

    echoed, payload = run(loop, main(), timeout=30)
    assert echoed == payload


def test_buffered_protocol_receives_into_its_buffer(loop) -> None:
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1024)
            self.received = bytearray()
            self.eof = loop.create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.received += self.buf[:nbytes]

        def eof_received(self):
            self.eof.set_result(bytes(self.received))

    async def main():
        server, port, accepted = await _server_and_client(loop, Buffered)
        transport, _ = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        transport.write(b"z" * 10_000)
        transport.write_eof()
        peer = await accepted
        data = await peer.eof
        transport.close()
        server.close()
        await server.wait_closed()
        return data

    assert run(loop, main()) == b"z" * 10_000


# ---------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls():
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def test_tls_create_server_and_create_connection(loop, tls) -> None:
    server_ctx, client_ctx = tls

    async def main():
        async def handle(reader, writer):
            line = await reader.readline()
            writer.write(b"secure " + line)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        ssl_object = writer.get_extra_info("ssl_object")
        writer.write(b"hello\n")
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return answer, ssl_object.version()

    answer, version = run(loop, main())
    assert answer == b"secure hello\n"
    assert version.startswith("TLS")


def test_tls_rejects_an_untrusted_certificate(loop, tls) -> None:
    server_ctx, _ = tls

    async def main():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.open_connection("127.0.0.1", port, ssl=ssl.create_default_context(),
                                              server_hostname="localhost")
        finally:
            server.close()
            await server.wait_closed()

    run(loop, main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="StreamWriter.start_tls() is new in Python 3.11")
def test_start_tls_upgrades_a_plain_connection(loop, tls) -> None:
    server_ctx, client_ctx = tls

    async def main():
        async def handle(reader, writer):
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"OK\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            line = await reader.readline()
            writer.write(b"tls " + line)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"ping\n")
        answer = await reader.readline()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return answer

    assert run(loop, main()) == b"tls ping\n"


# ---------------------------------------------------------------------- sendfile


@pytest.fixture
def data_file():
    content = os.urandom(3 * 1024 * 1024 + 17)
    with tempfile.NamedTemporaryFile() as f:
        f.write(content)
        f.flush()
        with open(f.name, "rb") as readable:
            yield readable, content


def test_transport_sendfile_follows_earlier_writes(loop, data_file) -> None:
    file, content = data_file

    async def main():
        server, port, accepted = await _server_and_client(loop)
        transport, _ = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        transport.write(b"HEAD")
        sent = await loop.sendfile(transport, file, offset=10, count=1_000_000)
        transport.write(b"TAIL")
        transport.write_eof()
        peer = await accepted
        received = await peer.eof
        transport.close()
        server.close()
        await server.wait_closed()
        return sent, received

    sent, received = run(loop, main(), timeout=30)
    assert sent == 1_000_000
    assert received == b"HEAD" + content[10:1_000_010] + b"TAIL"
    assert file.tell() == 1_000_010


def test_sendfile_over_tls_falls_back_to_writes(loop, data_file, tls) -> None:
    file, content = data_file
    server_ctx, client_ctx = tls

    async def main():
        server, port, accepted = await _server_and_client(loop, ssl=server_ctx)
        transport, _ = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port, ssl=client_ctx,
                                                    server_hostname="localhost")
        sent = await loop.sendfile(transport, file)
        peer = await accepted
        received = await peer.wait_for_bytes(len(content))
        transport.close()
        server.close()
        await server.wait_closed()
        return sent, received

    sent, received = run(loop, main(), timeout=30)
    assert sent == len(content)
    assert received == content


@pytest.mark.parametrize("end", ["abort", "close"])
def test_sendfile_blocked_on_a_full_socket_fails_when_the_connection_ends(loop, end) -> None:
    async def waiting_to_write(transport) -> None:
        # os.sendfile has filled the kernel's buffers and now waits for the socket to take more.
        while not loop._selector.get_key(transport._fd).events & selectors.EVENT_WRITE:
            await asyncio.sleep(0.005)

    async def main():
        server, port, accepted = await _server_and_client(loop)
        transport, _ = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        peer = await accepted
        peer.transport.pause_reading()  # the peer never reads
        with tempfile.TemporaryFile() as file:
            file.truncate(256 * 1024 * 1024)  # sparse: far more than socket buffers hold
            sending = loop.create_task(loop.sendfile(transport, file))
            await asyncio.wait_for(waiting_to_write(transport), 10)
            getattr(transport, end)()
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(sending, 5)
        server.close()
        peer.transport.abort()
        await server.wait_closed()

    run(loop, main(), timeout=30)


def test_sock_sendfile(loop, data_file) -> None:
    file, content = data_file
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)

    async def main():
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await loop.sock_accept(listener)
        with client, conn:
            async def read_all():
                chunks = []
                while chunk := await loop.sock_recv(conn, 1 << 16):
                    chunks.append(chunk)
                return b"".join(chunks)

            reading = asyncio.ensure_future(read_all())
            sent = await loop.sock_sendfile(client, file)
            client.shutdown(socket.SHUT_WR)
            return sent, await reading

    try:
        sent, received = run(loop, main(), timeout=30)
    finally:
        listener.close()
    assert sent == len(content)
    assert received == content


# ---------------------------------------------------------------------- servers and sockets


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_unix_server_and_connection(loop) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reactor.sock")

        async def main():
            async def handle(reader, writer):
                writer.write((await reader.readline()).upper())
                await writer.drain()
                writer.close()

            server = await asyncio.start_unix_server(handle, path)
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"over a unix socket\n")
            answer = await reader.readline()
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
            return answer

        assert run(loop, main()) == b"OVER A UNIX SOCKET\n"
        assert not os.path.exists(path)  # the server removes its socket file


def test_connect_accepted_socket(loop) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    conn, _ = listener.accept()

    async def main():
        transport, proto = await loop.connect_accepted_socket(lambda: Collector(loop), conn)
        await loop.run_in_executor(None, client.sendall, b"from a blocking client")
        data = await proto.wait_for_bytes(22)
        transport.write(b"back")
        transport.close()
        await proto.lost
        return data

    try:
        assert run(loop, main()) == b"from a blocking client"
        client.settimeout(5)
        assert client.recv(10) == b"back"
    finally:
        client.close()
        listener.close()


def test_server_close_and_wait_closed_waits_for_clients(loop) -> None:
    async def main():
        server, port, accepted = await _server_and_client(loop)
        assert server.is_serving()
        transport, client = await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)
        peer = await accepted
        server.close()
        assert not server.is_serving()
        waiting = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # a client is still connected
        peer.transport.close()
        await waiting
        transport.close()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(lambda: Collector(loop), "127.0.0.1", port)

    run(loop, main())


def test_connection_refused_is_reported(loop) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ConnectionRefusedError):
        run(loop, loop.create_connection(lambda: Collector(loop), "127.0.0.1", port))


def test_getaddrinfo_and_getnameinfo(loop) -> None:
    async def main():
        infos = await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        name = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        return infos, name

    infos, name = run(loop, main())
    assert infos and all(info[1] == socket.SOCK_STREAM for info in infos)
    assert name == ("127.0.0.1", "80")


# ---------------------------------------------------------------------- signals


@pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")
def test_add_signal_handler_runs_on_the_loop(loop) -> None:
    assert threading.current_thread() is threading.main_thread()
    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, lambda: got.done() or got.set_result(threading.get_ident()))
    try:
        loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        assert run(loop, got, timeout=5) == threading.get_ident()
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1)
    assert not loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_add_signal_handler_refuses_other_threads_and_bad_signals(loop) -> None:
    with pytest.raises(TypeError):
        loop.add_signal_handler("SIGTERM", lambda: None)
    with pytest.raises(ValueError):
        loop.add_signal_handler(100000, lambda: None)
    errors = []

    def from_thread():
        try:
            loop.add_signal_handler(signal.SIGUSR2, lambda: None)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=from_thread)
    thread.start()
    thread.join(5)
    assert errors and "main thread" in str(errors[0])
