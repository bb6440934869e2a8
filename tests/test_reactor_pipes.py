"""Pipe transports on the Reactor: connect_read_pipe / connect_write_pipe over real pipes.

Covers reading to EOF, pausing, write backpressure (pause_writing while the reader does not
read), the reader going away (seen idle, and as EPIPE mid-write), close vs abort, and the
kinds of file accepted. The core paths run on every selector backend this OS offers.
Waits are on conditions with deadlines; nothing sleeps in hope.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys

import pytest

from treadle import reactor

DEADLINE = 10.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the selector cannot watch Windows pipes")


@pytest.fixture(params=reactor.available_selectors())
def run(request):
    """run(coro) on a Reactor using each selector backend in turn."""
    return lambda coro: reactor.run(coro, selector=request.param)


@pytest.fixture
def pipe():
    """An os.pipe() as two unbuffered file objects, closed at teardown if the test did not."""
    r, w = os.pipe()
    reader, writer = open(r, "rb", buffering=0), open(w, "wb", buffering=0)
    yield reader, writer
    reader.close()
    writer.close()


class Reader(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.events: list = []
        self.data = bytearray()
        self.arrived = asyncio.Event()
        self.lost = loop.create_future()

    def connection_made(self, transport) -> None:
        self.events.append("connection_made")

    def data_received(self, data) -> None:
        self.data += data
        self.arrived.set()

    def eof_received(self):
        self.events.append("eof_received")

    def connection_lost(self, exc) -> None:
        self.events.append("connection_lost")
        self.lost.set_result(exc)


class Writer(asyncio.BaseProtocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.events: list = []
        self.paused = asyncio.Event()
        self.resumed = asyncio.Event()
        self.lost = loop.create_future()

    def pause_writing(self) -> None:
        self.events.append("pause_writing")
        self.paused.set()

    def resume_writing(self) -> None:
        self.events.append("resume_writing")
        self.resumed.set()

    def connection_lost(self, exc) -> None:
        self.events.append("connection_lost")
        self.lost.set_result(exc)


async def _drain_fd(fd: int) -> bytes:
    """Read `fd` to EOF, in the loop, through add_reader (the test's own independent reader)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if chunk:
            chunks.append(chunk)
        else:
            loop.remove_reader(fd)
            done.set_result(None)

    loop.add_reader(fd, readable)
    await asyncio.wait_for(done, DEADLINE)
    return b"".join(chunks)


# ---------------------------------------------------------------------- reading


def test_read_until_eof(run, pipe):
    reader, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_read_pipe(Reader, reader)
        assert transport.get_extra_info("pipe") is reader
        assert transport.is_reading()
        writer.write(b"first ")
        await asyncio.wait_for(proto.arrived.wait(), DEADLINE)
        writer.write(b"second")
        writer.close()
        assert await asyncio.wait_for(proto.lost, DEADLINE) is None
        return proto, transport

    proto, transport = run(main())
    assert bytes(proto.data) == b"first second"
    assert proto.events == ["connection_made", "eof_received", "connection_lost"]
    assert reader.closed and transport.is_closing()


def test_streamreader_over_a_read_pipe(pipe):
    reader, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), reader)
        writer.write(b"line one\nline two\n")
        writer.close()
        return [await asyncio.wait_for(stream.readline(), DEADLINE) for _ in range(3)]

    assert reactor.run(main()) == [b"line one\n", b"line two\n", b""]


def test_pause_and_resume_reading(pipe):
    reader, writer = pipe
    sentinel_r, sentinel_w = os.pipe()

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_read_pipe(Reader, reader)
        sentinel = Reader()
        sentinel_transport, _ = await loop.connect_read_pipe(lambda: sentinel, open(sentinel_r, "rb", 0))
        transport.pause_reading()
        assert not transport.is_reading()
        writer.write(b"held back")
        os.write(sentinel_w, b"!")
        # The loop saw the sentinel; the paused pipe had data just as ready and got none of it.
        await asyncio.wait_for(sentinel.arrived.wait(), DEADLINE)
        assert proto.data == b""
        transport.resume_reading()
        await asyncio.wait_for(proto.arrived.wait(), DEADLINE)
        transport.close()
        sentinel_transport.close()
        await asyncio.wait_for(proto.lost, DEADLINE)
        return bytes(proto.data)

    try:
        assert reactor.run(main()) == b"held back"
    finally:
        os.close(sentinel_w)


def test_read_pipe_with_a_buffered_protocol(pipe):
    reader, writer = pipe

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(4)
            self.received = bytearray()
            self.lost = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.received += self.buf[:nbytes]

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        loop = asyncio.get_running_loop()
        _, proto = await loop.connect_read_pipe(Buffered, reader)
        writer.write(b"0123456789")
        writer.close()
        await asyncio.wait_for(proto.lost, DEADLINE)
        return bytes(proto.received)

    assert reactor.run(main()) == b"0123456789"


# ---------------------------------------------------------------------- writing


def test_write_backpressure_pauses_until_the_reader_reads(run, pipe):
    reader, writer = pipe
    payload = os.urandom(1024 * 1024)

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        transport.write(payload)  # nobody reads: the pipe fills, the rest is buffered
        assert proto.events == ["pause_writing"]
        assert transport.get_write_buffer_size() > 64 * 1024
        received = await _drain_task(reader.fileno(), transport)
        await asyncio.wait_for(proto.resumed.wait(), DEADLINE)
        assert transport.get_write_buffer_size() == 0
        return received, proto

    received, proto = run(main())
    assert received == payload
    assert proto.events == ["pause_writing", "resume_writing", "connection_lost"]


async def _drain_task(fd: int, transport) -> bytes:
    """Read everything while the transport flushes and then closes (EOF ends the read)."""
    drain = asyncio.ensure_future(_drain_fd(fd))
    transport.close()  # after the buffer is flushed
    return await drain


def test_set_write_buffer_limits(pipe):
    _, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        transport.set_write_buffer_limits(high=200_000)
        assert transport.get_write_buffer_limits() == (50_000, 200_000)
        transport.write(b"x" * 150_000)  # ~64 KiB into the pipe, ~86 KiB buffered: under high
        assert proto.events == []
        transport.set_write_buffer_limits(high=1000, low=10)
        assert proto.events == ["pause_writing"]
        with pytest.raises(ValueError):
            transport.set_write_buffer_limits(high=1, low=2)
        transport.abort()
        await asyncio.wait_for(proto.lost, DEADLINE)

    reactor.run(main())


def test_close_flushes_then_closes_abort_drops(pipe):
    reader, writer = pipe
    payload = os.urandom(512 * 1024)

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        transport.write(payload)
        assert transport.can_write_eof()
        transport.write_eof()  # the same as close() on a pipe
        assert transport.is_closing()
        transport.write(b"dropped")  # after close: ignored, as asyncio does
        received = await _drain_fd(reader.fileno())
        assert await asyncio.wait_for(proto.lost, DEADLINE) is None
        return received

    assert reactor.run(main()) == payload


def test_abort_drops_the_buffer(pipe):
    reader, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        transport.write(b"y" * (1024 * 1024))
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        received = await _drain_fd(reader.fileno())
        assert await asyncio.wait_for(proto.lost, DEADLINE) is None
        return received

    received = reactor.run(main())
    assert 0 < len(received) < 1024 * 1024


# ---------------------------------------------------------------------- the reader going away


def test_reader_closing_is_seen_without_writing(run, pipe):
    reader, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        reader.close()
        # Nothing was buffered, so this is a clean end, as in asyncio.
        assert await asyncio.wait_for(proto.lost, DEADLINE) is None
        return transport

    transport = run(main())
    assert transport.is_closing() and writer.closed


def test_reader_closing_with_data_buffered_is_a_broken_pipe(pipe):
    reader, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        transport.write(b"z" * (1024 * 1024))
        reader.close()
        return await asyncio.wait_for(proto.lost, DEADLINE)

    assert isinstance(reactor.run(main()), BrokenPipeError)


def test_write_after_the_reader_closed_is_epipe(pipe):
    reader, writer = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_write_pipe(Writer, writer)
        reader.close()
        transport.write(b"into the void")  # before the loop notices: os.write meets EPIPE
        exc = await asyncio.wait_for(proto.lost, DEADLINE)
        for _ in range(3):
            transport.write(b"more")  # dropped quietly once closed
        return exc

    assert isinstance(reactor.run(main()), BrokenPipeError)


# ---------------------------------------------------------------------- kinds of file


def test_regular_files_are_refused(tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"data")

    async def main():
        loop = asyncio.get_running_loop()
        with open(path, "rb") as f, pytest.raises(ValueError, match=r"^Pipe transport is for pipes/sockets only\.$"):
            await loop.connect_read_pipe(Reader, f)
        with open(path, "ab") as f, pytest.raises(
                ValueError, match="^Pipe transport is only for pipes, sockets and character devices$"):
            await loop.connect_write_pipe(Writer, f)
        assert not loop._transports

    reactor.run(main())


def test_fifo_socket_and_character_device_are_accepted(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    async def main():
        loop = asyncio.get_running_loop()
        # A FIFO: open the read end first (non-blocking), then the write end.
        fifo_r = open(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK), "rb", 0)
        fifo_w = open(fifo, "wb", 0)
        rt, rp = await loop.connect_read_pipe(Reader, fifo_r)
        wt, wp = await loop.connect_write_pipe(Writer, fifo_w)
        wt.write(b"through the fifo")
        wt.close()
        await asyncio.wait_for(rp.lost, DEADLINE)
        assert bytes(rp.data) == b"through the fifo"

        # A socket, as either end.
        a, b = socket.socketpair()
        st, sp = await loop.connect_read_pipe(Reader, a)
        b.sendall(b"socket bytes")
        b.close()
        await asyncio.wait_for(sp.lost, DEADLINE)
        assert bytes(sp.data) == b"socket bytes"

        # A character device: /dev/null takes anything, and is never watched for a reader leaving.
        with open(os.devnull, "wb", 0) as null:
            nt, npr = await loop.connect_write_pipe(Writer, null)
            nt.write(b"gone")
            nt.close()
            assert await asyncio.wait_for(npr.lost, DEADLINE) is None

    reactor.run(main())


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pty")
def test_pty_read_side_sees_the_other_side_hang_up():
    # A tty is a character device. When its other side closes, Linux reports EIO instead
    # of EOF: the transport ends with that error, quietly (asyncio's behaviour).
    master, slave = os.openpty()

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_debug(True)  # not even debug mode reports such errors to the exception handler
        errors = []
        loop.set_exception_handler(lambda loop, context: errors.append(context))
        transport, proto = await loop.connect_read_pipe(Reader, open(master, "rb", 0))
        os.write(slave, b"typed\n")
        await asyncio.wait_for(proto.arrived.wait(), DEADLINE)
        os.close(slave)
        exc = await asyncio.wait_for(proto.lost, DEADLINE)
        return bytes(proto.data), exc, errors

    data, exc, errors = reactor.run(main())
    assert data == b"typed\r\n"  # the tty's line discipline turned \n into \r\n
    assert isinstance(exc, OSError) and exc.errno == errno.EIO
    assert errors == []


def test_a_transport_owns_its_fd(pipe):
    reader, _ = pipe

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.connect_read_pipe(Reader, reader)
        fd = reader.fileno()
        assert loop._transports[fd] is transport
        assert f"fd={fd} open" in repr(transport)
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(reader.fileno(), lambda: None)
        with pytest.raises(RuntimeError, match="is used by transport"):
            await loop.connect_read_pipe(Reader, reader)
        transport.close()
        await asyncio.wait_for(proto.lost, DEADLINE)
        assert fd not in loop._transports

    reactor.run(main())
