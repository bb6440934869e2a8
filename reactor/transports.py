"""Stream socket transports: the bridge from readiness events to a Protocol.

A `SocketTransport` owns one connected, non-blocking stream socket. Reading: when the
selector reports it readable, recv and hand the bytes to `protocol.data_received` (or fill
the protocol's own buffer, for a BufferedProtocol). Writing: `write()` tries `send` at once
and only buffers what the kernel would not take; the rest goes out when the socket becomes
writable. Flow control is the watermark pair every asyncio transport has (flowcontrol.py):
above the high mark the protocol is told `pause_writing()`, below the low mark `resume_writing()`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import socket
import warnings
from asyncio import BufferedProtocol
from asyncio.constants import _SendfileMode

from .flowcontrol import WARN_AFTER_WRITES_TO_CLOSED, WriteFlowControl
from .transport_errors import FatalErrorReporting, asyncio_logger

# One read takes at most this much: large enough that a fast sender needs few wake-ups.
# (The loop owns the buffer of this size that the reads go into: see `_read_ready`.)
MAX_RECV = 256 * 1024
# Buffered pieces handed to one sendmsg() (the kernel's IOV_MAX is 1024 on Linux).
MAX_SEND_PIECES = 64


# Scatter-gather sending where the platform has it (not on Windows).
_sendmsg = getattr(socket.socket, "sendmsg", None)


def _set_nodelay(sock: socket.socket) -> None:
    # Small responses must not wait for Nagle's algorithm: servers write whole messages.
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class SocketTransport(FatalErrorReporting, WriteFlowControl, asyncio.Transport):
    """A connected stream socket, driven by the reactor, speaking to one Protocol."""

    # asyncio's markers: loop.start_tls() may wrap this transport; loop.sendfile() may use os.sendfile.
    _start_tls_compatible = True
    _sendfile_compatible = _SendfileMode.TRY_NATIVE

    def __init__(self, loop, sock: socket.socket, protocol, waiter=None, extra=None, server=None) -> None:
        super().__init__(extra)
        self._extra["socket"] = asyncio.trsock.TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffered = isinstance(protocol, BufferedProtocol)
        self._server = server
        # What the kernel has not taken yet, as the pieces written (see `_keep`), oldest first.
        self._buffer: collections.deque = collections.deque()
        self._buffer_size = 0
        self._reading = True
        self._reading_registered = False
        self._closing = False
        self._eof_written = False
        self._conn_lost = 0
        self._sendfile_in_progress = False  # set by loop.sendfile while os.sendfile owns the socket
        self._flush_waiters: list[asyncio.Future] = []
        if server is not None:
            server._attach(self)
        loop._transports[self._fd] = self
        _set_nodelay(sock)
        loop.call_soon(self._start, waiter)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else ("closing" if self._closing else "open")
        return f"<{type(self).__name__} fd={self._fd} {state} buffered={self._buffer_size}>"

    def _start(self, waiter) -> None:
        if self._sock is None or not self._connection_made(waiter):
            return
        if self._reading and not self._closing:
            self._loop._add_reader(self._fd, self._read_ready)
            self._reading_registered = True

    # ------------------------------------------------------------------ reading

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        if not self._reading or self._closing:
            return
        self._reading = False
        if self._reading_registered:
            self._loop._remove_reader(self._fd)
            self._reading_registered = False

    def resume_reading(self) -> None:
        if self._reading or self._closing:
            return
        self._reading = True
        if self._sock is not None and not self._reading_registered and self._protocol_connected():
            self._loop._add_reader(self._fd, self._read_ready)
            self._reading_registered = True

    def _protocol_connected(self) -> bool:
        # Reading starts in _start, after connection_made; resuming before that must not race it.
        return self._loop._transports.get(self._fd) is self and self._conn_lost == 0

    def _read_ready(self) -> None:
        buffered = self._buffered
        if buffered:
            # A BufferedProtocol lends its own buffer: the bytes land where it wants them.
            try:
                buffer = self._protocol.get_buffer(-1)
                if not len(buffer):
                    raise RuntimeError("get_buffer() returned an empty buffer")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
                return
        else:
            # recv(MAX_RECV) would allocate a 256 KiB bytes object per call and shrink it to the
            # few bytes that came (malloc may even mmap/munmap it): ~5x the cost of the system
            # call for small messages. Instead, receive into the loop's one reusable buffer and
            # copy out only what arrived.
            buffer = self._loop._read_buffer
        try:
            nbytes = self._sock.recv_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._read_eof()
            return
        try:
            if buffered:
                self._protocol.buffer_updated(nbytes)
            else:
                self._protocol.data_received(bytes(buffer[:nbytes]))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            method = "buffer_updated" if buffered else "data_received"
            self._fatal_error(exc, f"Fatal error: protocol.{method}() call failed.")

    def _read_eof(self) -> None:
        self.pause_reading()
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        # A protocol that returns true keeps its side open (half-close); otherwise we close.
        if not keep_open:
            self.close()

    # ------------------------------------------------------------------ writing

    # Discussion — the write buffer is a queue of the pieces written, not one bytearray.
    # Appending to a bytearray copies every byte the kernel did not take, and dropping what
    # it then takes from the front copies the rest again on PyPy (CPython moves a start
    # pointer): a 1 MiB response sent in parts was copied several times over. Pieces are
    # kept as they are (bytes are immutable; anything else is copied once, since its owner
    # may change it as soon as write() returns), sent together with sendmsg(), and what the
    # kernel takes is dropped by slicing a view.

    def _check_writable(self, data) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._sendfile_in_progress:
            raise RuntimeError("unable to write; sendfile is in progress")

    def _lost(self) -> bool:
        """True (and counted, as asyncio does) if the connection is gone: the write is dropped."""
        if not self._conn_lost:
            return False
        if self._conn_lost >= WARN_AFTER_WRITES_TO_CLOSED:
            asyncio_logger.warning("socket.send() raised exception.")
        self._conn_lost += 1
        return True

    def write(self, data) -> None:
        self._check_writable(data)
        if not data or self._lost():
            return
        if not self._buffer:
            # Fast path: the socket usually takes the whole message and nothing is buffered.
            sent = self._send_now(self._sock.send, data)
            if sent is None or sent == len(data):
                return
            self._keep(data, sent)
            self._loop._add_writer(self._fd, self._write_ready)
        else:
            self._keep(data, 0)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data) -> None:
        """All the pieces, in one sendmsg() when nothing is buffered: no joining copy."""
        pieces = list(list_of_data)
        for data in pieces:
            self._check_writable(data)
        pieces = [data for data in pieces if data]
        if not pieces or self._lost():
            return
        if len(pieces) == 1 or self._buffer or _sendmsg is None:
            for data in pieces:
                self.write(data)
            return
        sent = self._send_now(self._sock.sendmsg, pieces)
        if sent is None:
            return
        for data in pieces:
            size = memoryview(data).nbytes
            if sent < size:
                self._keep(data, sent)
            sent = max(0, sent - size)
        if self._buffer:
            self._loop._add_writer(self._fd, self._write_ready)
            self._maybe_pause_protocol()

    def _send_now(self, send, data) -> int | None:
        """``send(data)``: what the kernel took (0 if it would block); None after a fatal error."""
        try:
            return send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return None

    def _keep(self, data, sent: int) -> None:
        """Buffer what is left of ``data`` after its first ``sent`` bytes (see the discussion)."""
        piece = data if type(data) is bytes else bytes(data)
        if sent:
            piece = memoryview(piece)[sent:]
        self._buffer.append(piece)
        self._buffer_size += len(piece)

    def _write_ready(self) -> None:
        buffer = self._buffer
        if self._conn_lost or not buffer:
            return
        try:
            if len(buffer) == 1 or _sendmsg is None:
                sent = self._sock.send(buffer[0])
            else:
                sent = self._sock.sendmsg(list(itertools.islice(buffer, MAX_SEND_PIECES)))
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop._remove_writer(self._fd)
            self._clear_buffer()
            self._fatal_error(exc, "Fatal write error on socket transport")
            return
        self._buffer_size -= sent
        while sent:
            size = len(buffer[0])
            if sent < size:
                buffer[0] = memoryview(buffer[0])[sent:]
                break
            buffer.popleft()
            sent -= size
        self._maybe_resume_protocol()
        if buffer:
            return
        self._loop._remove_writer(self._fd)
        if self._flush_waiters:
            self._wake_flush_waiters(None)
        if self._closing:
            self._call_connection_lost(None)
        elif self._eof_written:
            self._shutdown_write()

    def _clear_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_size = 0

    def _wait_flushed(self) -> asyncio.Future:
        """A future settled once everything written so far has gone to the kernel."""
        waiter = self._loop.create_future()
        if self._conn_lost or self._sock is None:
            waiter.set_exception(ConnectionError("Connection closed by peer"))
        elif not self._buffer:
            waiter.set_result(None)
        else:
            self._flush_waiters.append(waiter)
        return waiter

    def _wait_writable(self) -> asyncio.Future:
        """For loop.sendfile: settled when the socket can take more, failed if the connection is lost."""
        waiter = self._loop._wait_fd(self._sock, True)
        self._flush_waiters.append(waiter)
        return waiter

    def _wake_flush_waiters(self, exc) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        if not self._buffer:
            self._shutdown_write()

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the peer is already gone; the read side will see it

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    # ------------------------------------------------------------------ closing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading now; finish sending what is buffered, then close."""
        if self._closing:
            return
        self._closing = True
        if self._reading_registered:
            self._loop._remove_reader(self._fd)
            self._reading_registered = False
        if not self._buffer:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        """Close now, dropping whatever is still buffered."""
        self._force_close(None)

    def _force_close(self, exc) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._clear_buffer()
            self._loop._remove_writer(self._fd)
        if not self._closing:
            self._closing = True
            if self._reading_registered:
                self._loop._remove_reader(self._fd)
                self._reading_registered = False
        self._conn_lost += 1
        if self._flush_waiters:
            self._wake_flush_waiters(ConnectionError("Connection closed by peer") if exc is None else exc)
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc) -> None:
        if self._sock is None:
            return
        if self._flush_waiters:
            # A graceful close() during sendfile: the socket is about to go, so must its waiters.
            self._wake_flush_waiters(ConnectionError("Connection closed"))
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._loop._transports.pop(self._fd, None)
            self._sock.close()
            self._sock = None
            self._protocol = None
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, BufferedProtocol)

    def __del__(self, _warn=warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()
