"""Pipe transports: a protocol on one end of a pipe, FIFO, socket or character device.

`connect_read_pipe` and `connect_write_pipe` wrap a file object the caller already holds
(the ends of `os.pipe()`, a subprocess's stdout, a tty...). The fd is made non-blocking and
driven by the selector like a socket, with two differences that shape this module:

* A pipe has no shutdown(): the writer signals end-of-stream by closing its end, so
  `write_eof()` and `close()` are the same thing on a write pipe.
* A write end never becomes readable with data, so readability means the reader is gone
  (the kernel reports EPOLLERR/POLLERR on a pipe whose last reader closed). Watching it lets
  an idle writer learn that its peer left without having to write and meet EPIPE.

Regular files are refused: they are always "ready", so the selector cannot pace them.
"""

from __future__ import annotations

import asyncio
import os
import stat
import warnings
from asyncio import BufferedProtocol

from .flowcontrol import WARN_AFTER_WRITES_TO_CLOSED, WriteFlowControl
from .transport_errors import FatalErrorReporting, asyncio_logger

# One read takes at most this much, as for sockets: few wake-ups for a fast writer, a bounded
# buffer per read.
MAX_READ = 256 * 1024

if hasattr(os, "readv"):
    def _read_into(fd: int, buf) -> int:
        """read(2) straight into the protocol's buffer."""
        return os.readv(fd, [buf])
else:  # PyPy has no os.readv: read, then copy into the buffer
    def _read_into(fd: int, buf) -> int:
        with memoryview(buf) as view, view.cast("B") as target:
            data = os.read(fd, len(target))
            target[: len(data)] = data
        return len(data)


def _check_pipe_kind(fd: int, for_writing: bool) -> bool:
    """Raise ValueError unless `fd` is a pipe/FIFO, socket or character device.

    Returns whether the peer's closing can be seen as readability of the fd (FIFOs and
    sockets; a tty or /dev/null never reports it).
    """
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return True
    if stat.S_ISCHR(mode):
        return False
    if for_writing:
        raise ValueError("Pipe transport is only for pipes, sockets and character devices")
    raise ValueError("Pipe transport is for pipes/sockets only.")


class _PipeTransportBase(FatalErrorReporting):
    """What both directions share: ownership of the fd, start-up and the final connection_lost."""

    _pipe = None  # set first thing, so __del__ works on a transport whose __init__ failed

    def _adopt(self, loop, pipe, protocol, for_writing: bool) -> bool:
        fd = pipe.fileno()
        watch_peer = _check_pipe_kind(fd, for_writing)
        loop._ensure_fd_no_transport(fd)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fd = fd
        self._protocol = protocol
        self._closing = False
        # Set once connection_lost is scheduled: it must be delivered exactly once.
        self._lost = False
        os.set_blocking(fd, False)
        loop._transports[fd] = self
        return watch_peer

    def __repr__(self) -> str:
        state = "closed" if self._pipe is None else ("closing" if self._closing else "open")
        return f"<{type(self).__name__} fd={self._fd} {state}>"

    def _connect(self, waiter) -> bool:
        """Deliver connection_made; report failure to the waiter. True if the transport lives on."""
        return self._pipe is not None and self._connection_made(waiter) and not self._lost

    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def _force_close(self, exc) -> None:
        """Stop all I/O now and deliver connection_lost(exc) on the next pass."""
        self._closing = True
        if self._lost:
            return
        self._lost = True
        self._unwatch()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _unwatch(self) -> None:
        self._loop._remove_reader(self._fd)
        self._loop._remove_writer(self._fd)

    def _call_connection_lost(self, exc) -> None:
        if self._pipe is None:
            return
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._release()

    def _release(self) -> None:
        """Close the fd without telling the protocol (also used when the loop itself closes)."""
        if self._pipe is None:
            return
        self._closing = self._lost = True
        self._unwatch()
        if self._loop._transports.get(self._fd) is self:
            del self._loop._transports[self._fd]
        self._pipe.close()
        self._pipe = None
        self._protocol = None

    def __del__(self, _warn=warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()


class ReadPipeTransport(_PipeTransportBase, asyncio.ReadTransport):
    """The read end of a pipe: bytes go to `protocol.data_received` until EOF."""

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None) -> None:
        super().__init__(extra)
        self._adopt(loop, pipe, protocol, for_writing=False)
        self._paused = False
        loop.call_soon(self._start, waiter)

    def _start(self, waiter) -> None:
        # Reading starts only after connection_made: no data may reach an unconnected protocol.
        if self._connect(waiter) and self.is_reading():
            self._loop._add_reader(self._fd, self._read_ready)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._loop._remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop._add_reader(self._fd, self._read_ready)

    def _read_ready(self) -> None:
        buffered = isinstance(self._protocol, BufferedProtocol)
        try:
            if buffered:
                buf = self._protocol.get_buffer(-1)
                if not len(buf):
                    raise RuntimeError("get_buffer() returned an empty buffer")
                nbytes = _read_into(self._fd, buf)
                data = None
            else:
                data = os.read(self._fd, MAX_READ)
                nbytes = len(data)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if not nbytes:
            self._read_eof()
            return
        try:
            if buffered:
                self._protocol.buffer_updated(nbytes)
            else:
                self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_eof(self) -> None:
        # The writer closed its end. A read pipe cannot stay half-open, so whatever
        # eof_received() returns, the transport closes.
        self._closing = True
        self._loop._remove_reader(self._fd)
        try:
            self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        self._force_close(None)

    def close(self) -> None:
        if not self._closing:
            self._force_close(None)


class WritePipeTransport(_PipeTransportBase, WriteFlowControl, asyncio.WriteTransport):
    """The write end of a pipe: a buffer drained when the pipe is writable, with flow control."""

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None) -> None:
        super().__init__(extra)
        self._watch_peer = self._adopt(loop, pipe, protocol, for_writing=True)
        self._buffer = bytearray()
        self._writes_after_close = 0
        loop.call_soon(self._start, waiter)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} buffered={len(self._buffer)}>"

    def _start(self, waiter) -> None:
        if self._connect(waiter) and self._watch_peer:
            self._loop._add_reader(self._fd, self._peer_closed)

    def _peer_closed(self) -> None:
        # Readable write end = the last reader closed. Bytes still buffered will never be read.
        self._force_close(BrokenPipeError() if self._buffer else None)

    # ------------------------------------------------------------------ writing

    def write(self, data) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if not data:
            return
        if self._closing:
            # Like asyncio: a write racing the peer's departure is dropped, not an error;
            # the protocol learns of it through connection_lost.
            self._writes_after_close += 1
            if self._writes_after_close >= WARN_AFTER_WRITES_TO_CLOSED:
                asyncio_logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            return
        if not self._buffer:
            # Fast path: the pipe usually has room and nothing needs buffering.
            try:
                written = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if written == len(data):
                return
            data = memoryview(data)[written:]
            self._loop._add_writer(self._fd, self._write_ready)
        self._buffer += data  # a copy: the caller may reuse its buffer at once
        self._maybe_pause_protocol()

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        buffer = self._buffer
        if self._lost or not buffer:
            return
        try:
            written = os.write(self._fd, buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            buffer.clear()
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        del buffer[:written]
        self._maybe_resume_protocol()  # may write more
        if buffer:
            return
        self._loop._remove_writer(self._fd)
        if self._closing:
            self._force_close(None)

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    # ------------------------------------------------------------------ closing

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Close our end once the buffer is flushed: that is how a pipe says end-of-stream."""
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._force_close(None)

    def close(self) -> None:
        self.write_eof()

    def abort(self) -> None:
        """Close now, dropping whatever is still buffered."""
        self._buffer.clear()
        self._force_close(None)


class Pipes:
    """Mixin for the reactor: connect_read_pipe / connect_write_pipe."""

    async def connect_read_pipe(self, protocol_factory, pipe):
        """Read `pipe` (a file object) into the protocol `protocol_factory()` makes."""
        return await self._connect_pipe(ReadPipeTransport, protocol_factory, pipe)

    async def connect_write_pipe(self, protocol_factory, pipe):
        """Make `pipe` (a file object) the write transport of the protocol `protocol_factory()` makes."""
        return await self._connect_pipe(WritePipeTransport, protocol_factory, pipe)

    async def _connect_pipe(self, transport_class, protocol_factory, pipe):
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = transport_class(self, pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol
