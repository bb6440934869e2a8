"""Datagram endpoints on the Reactor: real UDP sockets on 127.0.0.1 (and a Unix datagram pair).

Covers echo, connected vs unconnected endpoints, sendto's address rules and errors,
ECONNREFUSED from a closed port reaching error_received, flow control when the socket
would block, close vs abort, and create_datagram_endpoint's argument errors (asyncio's).
"""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from treadle import reactor

DEADLINE = 10.0
LOCALHOST = ("127.0.0.1", 0)


@pytest.fixture(params=reactor.available_selectors())
def run(request):
    """run(coro) on a Reactor using each selector backend in turn."""
    return lambda coro: reactor.run(coro, selector=request.param)


class Endpoint(asyncio.DatagramProtocol):
    """Collects datagrams and errors into queues; `lost` settles in connection_lost."""

    def __init__(self, echo: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.echo = echo
        self.transport = None
        self.datagrams: asyncio.Queue = asyncio.Queue()
        self.errors: asyncio.Queue = asyncio.Queue()
        self.events: list[str] = []
        self.lost = loop.create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        if self.echo:
            self.transport.sendto(data.upper(), addr)
        self.datagrams.put_nowait((data, addr))

    def error_received(self, exc) -> None:
        self.errors.put_nowait(exc)

    def pause_writing(self) -> None:
        self.events.append("pause_writing")

    def resume_writing(self) -> None:
        self.events.append("resume_writing")

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)

    async def next(self):
        return await asyncio.wait_for(self.datagrams.get(), DEADLINE)


async def _close(*transports) -> None:
    protocols = [transport.get_protocol() for transport in transports]
    for transport in transports:
        transport.close()
    for protocol in protocols:
        assert await asyncio.wait_for(protocol.lost, DEADLINE) is None


def _closed_udp_port() -> int:
    """A port nothing listens on: bind one, note it, close it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(LOCALHOST)
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- echo


def test_echo_over_a_connected_endpoint(run):
    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(lambda: Endpoint(echo=True), local_addr=LOCALHOST)
        server_addr = server.get_extra_info("sockname")
        client, proto = await loop.create_datagram_endpoint(Endpoint, remote_addr=server_addr)
        assert client.get_extra_info("peername") == server_addr
        client.sendto(b"ping")  # no address needed: the socket is connected
        client.sendto(b"pong", server_addr)  # or the peer's own address
        client.sendto(b"")  # an empty datagram is a datagram
        replies = [await proto.next() for _ in range(3)]
        await _close(client, server)
        return replies, server_addr

    replies, server_addr = run(main())
    assert replies == [(b"PING", server_addr), (b"PONG", server_addr), (b"", server_addr)]


def test_unconnected_endpoint_talks_to_anyone():
    async def main():
        loop = asyncio.get_running_loop()
        a, pa = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        b, pb = await loop.create_datagram_endpoint(lambda: Endpoint(echo=True), local_addr=LOCALHOST)
        c, pc = await loop.create_datagram_endpoint(lambda: Endpoint(echo=True), local_addr=LOCALHOST)
        assert a.get_extra_info("peername") is None
        a.sendto(b"to b", b.get_extra_info("sockname"))
        a.sendto(b"to c", c.get_extra_info("sockname"))
        replies = sorted([await pa.next(), await pa.next()])
        await _close(a, b, c)
        return replies, b.get_extra_info("sockname"), c.get_extra_info("sockname")

    replies, b_addr, c_addr = reactor.run(main())
    assert replies == sorted([(b"TO B", b_addr), (b"TO C", c_addr)])


def test_family_only_gives_an_unbound_socket_that_binds_on_first_send():
    async def main():
        loop = asyncio.get_running_loop()
        server, ps = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        client, _ = await loop.create_datagram_endpoint(Endpoint, family=socket.AF_INET)
        client.sendto(b"hello", server.get_extra_info("sockname"))
        data, addr = await ps.next()
        await _close(client, server)
        return data, addr

    data, addr = reactor.run(main())
    assert data == b"hello" and addr[1] != 0


def test_allow_broadcast_keeps_the_socket_unconnected():
    async def main():
        loop = asyncio.get_running_loop()
        server, ps = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        server_addr = server.get_extra_info("sockname")
        client, _ = await loop.create_datagram_endpoint(Endpoint, remote_addr=server_addr, allow_broadcast=True)
        sock = client.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        assert client.get_extra_info("peername") is None
        client.sendto(b"via sendto")  # the remote_addr is the default destination
        received = (await ps.next())[0]
        await _close(client, server)
        return received

    assert reactor.run(main()) == b"via sendto"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_lets_two_endpoints_share_a_port():
    async def main():
        loop = asyncio.get_running_loop()
        first, _ = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST, reuse_port=True)
        port = first.get_extra_info("sockname")[1]
        second, _ = await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", port), reuse_port=True)
        assert second.get_extra_info("sockname")[1] == port
        with pytest.raises(OSError):
            await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", port))
        await _close(first, second)

    reactor.run(main())


# ---------------------------------------------------------------------- sendto's rules and errors


def test_sendto_address_rules():
    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        server_addr = server.get_extra_info("sockname")
        connected, _ = await loop.create_datagram_endpoint(Endpoint, remote_addr=server_addr)
        with pytest.raises(ValueError, match=r"^Invalid address: must be None or \('127\.0\.0\.1', \d+\)$"):
            connected.sendto(b"x", ("127.0.0.1", 1))
        with pytest.raises(ValueError, match="needs a destination address"):
            server.sendto(b"x")  # unconnected, and no address
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, not 'str'"):
            server.sendto("text", server_addr)
        await _close(connected, server)

    reactor.run(main())


def test_sendto_errors_reach_error_received_and_the_transport_lives_on():
    async def main():
        loop = asyncio.get_running_loop()
        a, pa = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        a.sendto(b"x", ("127.0.0.1", 0))  # port 0: EINVAL from the kernel
        a.sendto(b"x", ("::1", 9))  # an IPv6 address on an IPv4 socket
        errors = [pa.errors.get_nowait(), pa.errors.get_nowait()]
        assert not a.is_closing()
        a.sendto(b"still works", a.get_extra_info("sockname"))
        data = (await pa.next())[0]
        await _close(a)
        return errors, data

    errors, data = reactor.run(main())
    assert all(isinstance(exc, OSError) for exc in errors)
    assert data == b"still works"


def test_connected_endpoint_to_a_closed_port_gets_connection_refused(run):
    async def main():
        loop = asyncio.get_running_loop()
        client, proto = await loop.create_datagram_endpoint(Endpoint, remote_addr=("127.0.0.1", _closed_udp_port()))
        client.sendto(b"anyone there?")
        # The ICMP port-unreachable comes back as ECONNREFUSED on the next recv (or send).
        exc = await asyncio.wait_for(proto.errors.get(), DEADLINE)
        assert not client.is_closing()
        await _close(client)
        return exc

    assert isinstance(run(main()), ConnectionRefusedError)


# ---------------------------------------------------------------------- flow control and closing


def _unix_datagram_pair():
    # A Unix datagram socket blocks (EAGAIN) once the peer's queue is full, where UDP on
    # loopback would drop: the way to make the transport buffer, deterministically.
    if not hasattr(socket, "AF_UNIX"):
        pytest.skip("needs Unix datagram sockets")
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)


def test_flow_control_when_the_socket_would_block():
    ours, theirs = _unix_datagram_pair()
    count = 300

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(Endpoint, sock=ours)
        transport.set_write_buffer_limits(high=4096)
        for i in range(count):
            transport.sendto(b"%04d" % i + b"." * 1000)
        assert proto.events == ["pause_writing"]
        assert transport.get_write_buffer_size() > 4096
        # Now read the other side: the queue drains, resume_writing follows.
        peer, peer_proto = await loop.create_datagram_endpoint(Endpoint, sock=theirs)
        received = [(await peer_proto.next())[0][:4] for _ in range(count)]
        assert transport.get_write_buffer_size() == 0
        await _close(transport, peer)
        return received, proto.events

    received, events = reactor.run(main())
    assert received == [b"%04d" % i for i in range(count)]  # every datagram, in order
    assert events == ["pause_writing", "resume_writing"]


def test_close_sends_what_is_queued_abort_drops_it():
    ours, theirs = _unix_datagram_pair()
    other_ours, other_theirs = _unix_datagram_pair()
    count = 300
    padding = b"." * 1000  # big enough that the peer's queue fills and the rest is buffered

    async def main():
        loop = asyncio.get_running_loop()
        closing, closing_proto = await loop.create_datagram_endpoint(Endpoint, sock=ours)
        aborting, aborting_proto = await loop.create_datagram_endpoint(Endpoint, sock=other_ours)
        for i in range(count):
            closing.sendto(b"%04d" % i + padding)
            aborting.sendto(b"%04d" % i + padding)
        assert closing.get_write_buffer_size() and aborting.get_write_buffer_size()
        closing.close()
        aborting.abort()
        assert closing.is_closing() and aborting.is_closing()
        assert aborting.get_write_buffer_size() == 0
        closing.sendto(b"after close")  # dropped
        assert await asyncio.wait_for(aborting_proto.lost, DEADLINE) is None
        peer, peer_proto = await loop.create_datagram_endpoint(Endpoint, sock=theirs)
        received = [(await peer_proto.next())[0][:4] for _ in range(count)]
        assert await asyncio.wait_for(closing_proto.lost, DEADLINE) is None
        await _close(peer)
        other_theirs.setblocking(False)
        delivered = []
        while True:
            try:
                delivered.append(other_theirs.recv(2000))
            except BlockingIOError:
                break
        other_theirs.close()
        return received, delivered

    received, delivered_before_abort = reactor.run(main())
    assert received == [b"%04d" % i for i in range(count)]
    assert 0 < len(delivered_before_abort) < count


def test_pause_and_resume_reading():
    async def main():
        loop = asyncio.get_running_loop()
        paused, proto = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        sentinel, sentinel_proto = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        sender, _ = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        assert isinstance(paused, asyncio.Transport) and paused.is_reading()
        paused.pause_reading()
        assert not paused.is_reading()
        sender.sendto(b"held", paused.get_extra_info("sockname"))
        sender.sendto(b"sentinel", sentinel.get_extra_info("sockname"))
        # The loop saw the sentinel; the paused endpoint's datagram was just as ready.
        await sentinel_proto.next()
        assert proto.datagrams.empty()
        paused.resume_reading()
        data = (await proto.next())[0]
        with pytest.raises(NotImplementedError):
            paused.write(b"streams only")
        await _close(paused, sentinel, sender)
        return data

    assert reactor.run(main()) == b"held"


def test_transport_owns_its_socket_and_releases_it():
    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
        sock = transport.get_extra_info("socket")
        fd = sock.fileno()
        assert loop._transports[fd] is transport
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, lambda: None)
        await _close(transport)
        assert fd not in loop._transports
        return sock.fileno()

    assert reactor.run(main()) == -1


# ---------------------------------------------------------------------- argument errors (asyncio's)


def test_argument_errors():
    async def main():
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            with pytest.raises(ValueError, match="^A UDP Socket was expected"):
                await loop.create_datagram_endpoint(Endpoint, sock=tcp)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            owner, owner_proto = await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST)
            with pytest.raises(RuntimeError, match="is used by transport"):
                await loop.create_datagram_endpoint(Endpoint, sock=owner.get_extra_info("socket")._sock)
            await _close(owner)
            with pytest.raises(ValueError, match=r"when sock is specified\. \(local_addr=\('127\.0\.0\.1', 0\)\)$"):
                await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST, sock=udp)
            with pytest.raises(ValueError, match=r"\(reuse_port=True, allow_broadcast=True\)$"):
                await loop.create_datagram_endpoint(Endpoint, sock=udp, reuse_port=True, allow_broadcast=True)
        with pytest.raises(ValueError, match="^unexpected address family$"):
            await loop.create_datagram_endpoint(Endpoint)
        with pytest.raises(TypeError, match="^2-tuple is expected$"):
            await loop.create_datagram_endpoint(Endpoint, local_addr="127.0.0.1")
        with pytest.raises(TypeError, match="^2-tuple is expected$"):
            await loop.create_datagram_endpoint(Endpoint, remote_addr=("127.0.0.1", 1, 0, 0))
        if hasattr(socket, "AF_UNIX"):
            with pytest.raises(TypeError, match="^string is expected$"):
                await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST, family=socket.AF_UNIX)
        if socket.has_ipv6:
            # An IPv4 local address and an IPv6 remote one: no socket can have both.
            with pytest.raises(ValueError, match="^can not get address information$"):
                await loop.create_datagram_endpoint(Endpoint, local_addr=LOCALHOST, remote_addr=("::1", 9))
        with pytest.raises(OSError):
            await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", _bound_port()))
        assert not loop._transports

    reactor.run(main())


_held: list[socket.socket] = []


def _bound_port() -> int:
    """A UDP port currently bound (kept open until the end of the module's tests)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(LOCALHOST)
    _held.append(sock)
    return sock.getsockname()[1]


@pytest.fixture(autouse=True, scope="module")
def _release_held_sockets():
    yield
    for sock in _held:
        sock.close()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or sys.platform == "win32", reason="needs AF_UNIX")
def test_unix_datagram_endpoint_by_path(tmp_path):
    server_path, client_path = str(tmp_path / "server.sock"), str(tmp_path / "client.sock")

    async def main():
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(lambda: Endpoint(echo=True), local_addr=server_path,
                                                        family=socket.AF_UNIX)
        client, proto = await loop.create_datagram_endpoint(Endpoint, local_addr=client_path,
                                                            remote_addr=server_path, family=socket.AF_UNIX)
        client.sendto(b"over unix")
        reply = await proto.next()
        await _close(client, server)
        return reply

    assert reactor.run(main()) == (b"OVER UNIX", server_path)
