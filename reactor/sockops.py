"""The `sock_*` coroutines: one socket call at a time, awaiting readiness in between.

Each operation tries the non-blocking call first (data is often already there) and only
when the kernel says "would block" parks on a future that a reader or writer callback
settles. That one pattern, `_wait_readable`/`_wait_writable`, is all of this module.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import ssl

# Read this much of a file per step when sendfile must fall back to read + send.
_SENDFILE_FALLBACK_CHUNK = 256 * 1024


def _check_socket(loop, sock: socket.socket) -> None:
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    loop._ensure_fd_no_transport(sock)


class SocketOps:
    """Mixin for the reactor: awaitable versions of the socket calls."""

    def _wait_fd(self, sock, writable: bool) -> asyncio.Future:
        fd = sock.fileno()
        waiter = self.create_future()
        if writable:
            handle = self._add_writer(fd, _wake_waiter, waiter)
        else:
            handle = self._add_reader(fd, _wake_waiter, waiter)
        waiter.add_done_callback(_Unwatch(self, fd, writable, handle).done)
        return waiter

    async def _retry_until_ready(self, sock, writable: bool, method: str, *args):
        # The method is looked up on every attempt, as a plain `sock.recv(n)` loop would.
        while True:
            try:
                return getattr(sock, method)(*args)
            except (BlockingIOError, InterruptedError):
                await self._wait_fd(sock, writable)

    async def sock_recv(self, sock, n: int) -> bytes:
        _check_socket(self, sock)
        return await self._retry_until_ready(sock, False, "recv", n)

    async def sock_recv_into(self, sock, buf) -> int:
        _check_socket(self, sock)
        return await self._retry_until_ready(sock, False, "recv_into", buf)

    async def sock_recvfrom(self, sock, bufsize: int):
        _check_socket(self, sock)
        return await self._retry_until_ready(sock, False, "recvfrom", bufsize)

    async def sock_recvfrom_into(self, sock, buf, nbytes: int = 0):
        _check_socket(self, sock)
        return await self._retry_until_ready(sock, False, "recvfrom_into", buf, nbytes or len(buf))

    async def sock_sendto(self, sock, data, address) -> int:
        _check_socket(self, sock)
        return await self._retry_until_ready(sock, True, "sendto", data, address)

    async def sock_sendall(self, sock, data) -> None:
        _check_socket(self, sock)
        view = memoryview(data).cast("B")
        total = len(view)
        sent = 0
        while sent < total:
            try:
                sent += sock.send(view[sent:])
            except (BlockingIOError, InterruptedError):
                await self._wait_fd(sock, True)

    async def sock_accept(self, sock):
        _check_socket(self, sock)
        conn, address = await self._retry_until_ready(sock, False, "accept")
        conn.setblocking(False)
        return conn, address

    async def sock_connect(self, sock, address) -> None:
        _check_socket(self, sock)
        if sock.family != getattr(socket, "AF_UNIX", None):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto
            )
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            await self._wait_fd(sock, True)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                return
            if err not in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                raise OSError(err, f"Connect call failed {address}")

    async def sock_sendfile(self, sock, file, offset: int = 0, count: int | None = None, *, fallback=True):
        _check_socket(self, sock)
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not sock.type == socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        _check_sendfile_args(offset, count)
        try:
            return await self._sendfile_native(sock, file, offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sendfile_by_copy(sock, file, offset, count)

    async def _sendfile_native(self, sock, file, offset: int, count: int | None) -> int:
        """os.sendfile: the kernel copies file pages straight to the socket."""
        if not hasattr(os, "sendfile"):
            raise asyncio.SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation) as exc:
            raise asyncio.SendfileNotAvailableError("not a regular file") from exc
        try:
            size = os.fstat(fileno).st_size
        except OSError as exc:
            raise asyncio.SendfileNotAvailableError("not a regular file") from exc
        end = size if count is None else min(size, offset + count)
        position = offset
        try:
            while position < end:
                try:
                    sent = os.sendfile(sock.fileno(), fileno, position, end - position)
                except (BlockingIOError, InterruptedError):
                    await self._wait_sendfile_writable(sock)
                    continue
                except OSError as exc:
                    if position == offset and exc.errno in (errno.ENOTSOCK, errno.EINVAL, errno.ENOSYS):
                        # The kernel can't sendfile from this kind of file: copy instead.
                        raise asyncio.SendfileNotAvailableError("os.sendfile() refused this file") from exc
                    raise
                if sent == 0:
                    break  # the file shrank under us
                position += sent
        finally:
            if position > offset:
                file.seek(position)
        return position - offset

    def _wait_sendfile_writable(self, sock) -> asyncio.Future:
        transport = self._transports.get(sock.fileno())
        if transport is not None:
            # loop.sendfile() over a transport: the wait must also end if its connection does.
            return transport._wait_writable()
        return self._wait_fd(sock, True)

    async def _sendfile_by_copy(self, sock, file, offset: int, count: int | None) -> int:
        if offset:
            file.seek(offset)
        total = 0
        try:
            while count is None or total < count:
                size = _SENDFILE_FALLBACK_CHUNK if count is None else min(_SENDFILE_FALLBACK_CHUNK, count - total)
                data = await self.run_in_executor(None, file.read, size)
                if not data:
                    break
                await self.sock_sendall(sock, data)
                total += len(data)
        finally:
            if total:
                file.seek(offset + total)
        return total


def _check_sendfile_args(offset, count) -> None:
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")


def _wake_waiter(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Unwatch:
    """Stop watching a socket once its waiter settles, however it settles (cancel included).

    Only if the watch is still the waiter's own: a cancelled sock_recv whose callback runs after
    a newer sock_recv on the same socket registered its reader must not remove that reader.
    """

    __slots__ = ("loop", "fd", "writable", "handle")

    def __init__(self, loop, fd: int, writable: bool, handle) -> None:
        self.loop = loop
        self.fd = fd
        self.writable = writable
        self.handle = handle

    def done(self, _waiter) -> None:
        if self.handle.cancelled():
            return  # replaced by a newer watch on the same fd, or already removed
        if self.writable:
            self.loop._remove_writer(self.fd)
        else:
            self.loop._remove_reader(self.fd)
