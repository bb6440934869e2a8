"""Datagram endpoints: create_datagram_endpoint and the transport for a UDP (or Unix datagram) socket.

A datagram socket differs from a stream in three ways this module is shaped by:

* Messages keep their boundaries, so the write buffer is a queue of (datagram, address)
  pairs, never one byte string; a datagram the kernel would not take whole waits its turn.
* Most errors are about one datagram, not the socket: a send the OS refuses, or an ICMP
  "port unreachable" reported on a *connected* socket by the next recv or send
  (ECONNREFUSED). They go to `protocol.error_received(exc)` and the transport lives on.
* Zero-length datagrams are real messages, and are sent (asyncio < 3.12 dropped them).
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import stat
import warnings

from .flowcontrol import WARN_AFTER_WRITES_TO_CLOSED, WriteFlowControl
from .transport_errors import FatalErrorReporting, asyncio_logger

# Large enough for any UDP datagram (65,507 bytes over IPv4) and for most Unix datagrams;
# a longer one is truncated by the kernel, as for any recvfrom of this size.
MAX_DATAGRAM = 256 * 1024
# Datagrams read per readiness event: fewer wake-ups under load, while other sockets still
# get their turn (each read is one short system call).
_DATAGRAMS_PER_EVENT = 32


class DatagramTransport(FatalErrorReporting, WriteFlowControl, asyncio.Transport, asyncio.DatagramTransport):
    """A datagram socket driven by the reactor, speaking to one DatagramProtocol.

    Also an `asyncio.Transport`, as asyncio's own datagram transport is (code and asyncio's
    test suite check `isinstance(t, asyncio.Transport)`); of the stream methods it supports
    pause_reading/resume_reading, and write() raises NotImplementedError (use sendto).
    """

    _sock = None  # so __del__ works on a transport whose __init__ failed

    def __init__(self, loop, sock: socket.socket, protocol, address=None, waiter=None, extra=None) -> None:
        super().__init__(extra)
        self._extra["socket"] = asyncio.trsock.TransportSocket(sock)
        for key, query in (("sockname", sock.getsockname), ("peername", sock.getpeername)):
            try:
                self._extra[key] = query()
            except OSError:
                self._extra[key] = None
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        # The default destination: a connected socket's peer, or remote_addr with allow_broadcast.
        self._address = address
        # A connected socket must use send(): sendto() on it fails on some systems.
        self._connected = self._extra["peername"] is not None
        self._buffer: collections.deque[tuple[bytes, object]] = collections.deque()
        self._buffer_size = 0
        self._closing = False
        self._reading = True
        self._started = False  # connection_made delivered: reading may begin
        self._lost = False  # connection_lost scheduled: it is delivered exactly once
        self._writes_after_close = 0
        loop._transports[self._fd] = self
        loop.call_soon(self._start, waiter)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else ("closing" if self._closing else "open")
        return f"<{type(self).__name__} fd={self._fd} {state} buffered={self._buffer_size}>"

    def _start(self, waiter) -> None:
        if self._sock is None or not self._connection_made(waiter):
            return
        # Reading starts only once the protocol is connected.
        self._started = True
        if self.is_reading():
            self._loop._add_reader(self._fd, self._read_ready)

    # ------------------------------------------------------------------ receiving

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        """Stop receiving; datagrams queue in the kernel (and are dropped once its buffer is full)."""
        if not self.is_reading():
            return
        self._reading = False
        self._loop._remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._closing or self._reading:
            return
        self._reading = True
        if self._started:
            self._loop._add_reader(self._fd, self._read_ready)

    def _read_ready(self) -> None:
        for _ in range(_DATAGRAMS_PER_EVENT):
            if not self.is_reading():
                return  # the protocol paused or closed us from datagram_received
            try:
                data, addr = self._sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # e.g. ECONNREFUSED: an earlier datagram met a closed port. The socket is fine.
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(data, addr)

    # ------------------------------------------------------------------ sending

    def sendto(self, data, addr=None) -> None:
        """Send one datagram to `addr` (which must be None or the peer on a connected transport)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._address is not None:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        elif addr is None and not self._connected:
            raise ValueError("Invalid address: an unconnected transport needs a destination address")
        if self._closing:
            # Like a stream transport: dropped, and said so once it looks like a habit.
            self._writes_after_close += 1
            if self._writes_after_close >= WARN_AFTER_WRITES_TO_CLOSED:
                asyncio_logger.warning("socket.send() raised exception.")
            return
        if not self._buffer:
            # Fast path: the socket takes the datagram and nothing is queued.
            try:
                self._send(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop._add_writer(self._fd, self._sendto_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._buffer.append((bytes(data), addr))  # a copy: the caller may reuse its buffer
        self._buffer_size += len(data)
        self._maybe_pause_protocol()

    def _send(self, data, addr) -> None:
        if self._connected:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)

    def _sendto_ready(self) -> None:
        buffer = self._buffer
        while buffer:
            data, addr = buffer[0]
            try:
                self._send(data, addr)
            except (BlockingIOError, InterruptedError):
                return  # the rest waits for the next writable event
            except OSError as exc:
                # This datagram is lost; report it and carry on with the next one.
                buffer.popleft()
                self._buffer_size -= len(data)
                self._protocol.error_received(exc)
                continue
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            buffer.popleft()
            self._buffer_size -= len(data)
        self._maybe_resume_protocol()  # may queue more
        if buffer:
            return
        self._loop._remove_writer(self._fd)
        if self._closing:
            self._force_close(None)

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    # ------------------------------------------------------------------ closing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop receiving now; send what is queued, then close."""
        if self._closing:
            return
        self._closing = True
        self._loop._remove_reader(self._fd)
        if not self._buffer:
            self._force_close(None)

    def abort(self) -> None:
        """Close now, dropping queued datagrams."""
        self._force_close(None)

    def _force_close(self, exc) -> None:
        self._closing = True
        if self._lost:
            return
        self._lost = True
        self._buffer.clear()
        self._buffer_size = 0
        self._loop._remove_reader(self._fd)
        self._loop._remove_writer(self._fd)
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc) -> None:
        if self._sock is None:
            return
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self._loop._transports.get(self._fd) is self:
                del self._loop._transports[self._fd]
            self._sock.close()
            self._sock = None
            self._protocol = None

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def __del__(self, _warn=warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()


def _set_reuse_port(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError("reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented.")


class Datagrams:
    """Mixin for the reactor: create_datagram_endpoint."""

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None, *, family=0,
                                       proto=0, flags=0, reuse_port=None, allow_broadcast=None, sock=None):
        """Bind and/or connect a datagram socket (or adopt `sock`); returns (transport, protocol)."""
        if sock is not None:
            if sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if local_addr or remote_addr or family or proto or flags or reuse_port or allow_broadcast:
                options = dict(local_addr=local_addr, remote_addr=remote_addr, family=family, proto=proto,
                               flags=flags, reuse_port=reuse_port, allow_broadcast=allow_broadcast)
                problems = ", ".join(f"{key}={value}" for key, value in options.items() if value)
                raise ValueError(f"socket modifier keyword arguments can not be used when sock is specified. "
                                 f"({problems})")
            self._ensure_fd_no_transport(sock)
            sock.setblocking(False)
            remote = None
        else:
            candidates = await self._datagram_address_pairs(local_addr, remote_addr, family, proto, flags)
            sock, remote = await self._open_datagram_socket(candidates, local_addr, remote_addr, reuse_port,
                                                            allow_broadcast)
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = DatagramTransport(self, sock, protocol, remote, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _datagram_address_pairs(self, local_addr, remote_addr, family, proto, flags):
        """[((family, proto), (local, remote)), ...]: the socket kinds that can serve both addresses."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), (None, None))]
        if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
            for addr in (local_addr, remote_addr):
                if addr is not None and not isinstance(addr, str):
                    raise TypeError("string is expected")
            if local_addr and local_addr[0] not in (0, "\x00"):
                # A socket file left by an earlier run would make bind() fail; never remove anything else.
                try:
                    if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                        os.remove(local_addr)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    asyncio_logger.error("Unable to check or remove stale UNIX socket %r: %r",
                                             local_addr, exc)
            return [((family, proto), (local_addr, remote_addr))]
        # Resolve both; keep the (family, proto) kinds for which every given address resolved.
        by_kind: dict = {}
        for index, addr in ((0, local_addr), (1, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await self.getaddrinfo(addr[0], addr[1], family=family, type=socket.SOCK_DGRAM,
                                           proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for info_family, _, info_proto, _, address in infos:
                by_kind.setdefault((info_family, info_proto), [None, None])[index] = address
        pairs = [(kind, pair) for kind, pair in by_kind.items()
                 if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _open_datagram_socket(self, candidates, local_addr, remote_addr, reuse_port, allow_broadcast):
        """The first candidate that binds and connects: (socket, default destination or None)."""
        exceptions = []
        for (family, proto), (local_address, remote_address) in candidates:
            sock = None
            try:
                sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
                if reuse_port:
                    _set_reuse_port(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if local_addr:
                    sock.bind(local_address)
                if remote_addr:
                    # A broadcast endpoint stays unconnected: replies come from other addresses.
                    if not allow_broadcast:
                        await self.sock_connect(sock, remote_address)
                    return sock, remote_address
                return sock, None
            except OSError as exc:
                if sock is not None:
                    sock.close()
                exceptions.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        raise exceptions[0]
