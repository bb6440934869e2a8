"""`loop.sendfile(transport, file)`: a file sent over a transport, by the kernel where it can.

Native path (a plain `SocketTransport`): wait until the transport's buffer is flushed, so file
bytes never overtake bytes written before, then let `os.sendfile` copy file pages straight to
the socket. While it runs the transport is paused for reading (a peer's EOF must not close the
socket under the system call) and refuses write() (its bytes would land in the middle of the file).

Fallback (TLS transports, or files os.sendfile refuses): read the file in chunks in the thread
pool and write() them, waiting whenever the transport asks its protocol to pause writing. To
hear that request, a stand-in protocol sits in front of the app's for the duration.
"""

from __future__ import annotations

import asyncio
from asyncio.constants import _SendfileMode

from .sockops import _check_sendfile_args

# Read this much of a file per step when sendfile must fall back to read + write.
FALLBACK_CHUNK = 256 * 1024


class FileSending:
    """The loop's ``sendfile`` (a mixin of the Reactor)."""

    async def sendfile(self, transport, file, offset=0, count=None, *, fallback=True) -> int:
        """Send a file over a transport: os.sendfile on a plain socket, read + write otherwise.

        Transports say what they allow with asyncio's `_sendfile_compatible` marker: ours try
        native sendfile, asyncio's TLS transport allows the fallback, datagrams nothing.
        """
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED)
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        _check_sendfile_args(offset, count)
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await sendfile_native(self, transport, file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        elif not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not supported for "
                               f"transport {transport!r}")
        return await sendfile_by_writes(self, transport, file, offset, count)



async def sendfile_native(loop, transport, file, offset: int, count: int | None) -> int:
    """os.sendfile on the transport's socket; SendfileNotAvailableError if the file won't allow it."""
    resume_reading = transport.is_reading()
    transport.pause_reading()
    transport._sendfile_in_progress = True
    try:
        await transport._wait_flushed()
        return await loop._sendfile_native(transport._sock, file, offset, count)
    finally:
        transport._sendfile_in_progress = False
        if resume_reading:
            transport.resume_reading()


async def sendfile_by_writes(loop, transport, file, offset: int, count: int | None) -> int:
    """Read the file in chunks and write them, honouring the transport's flow control."""
    if offset:
        file.seek(offset)
    total = 0
    stand_in = _FlowControlStandIn(loop, transport)
    try:
        while count is None or total < count:
            size = FALLBACK_CHUNK if count is None else min(FALLBACK_CHUNK, count - total)
            data = await loop.run_in_executor(None, file.read, size)
            if not data:
                break
            await stand_in.drain()
            transport.write(data)
            total += len(data)
        await stand_in.drain()
    finally:
        if total:
            file.seek(offset + total)
        stand_in.restore()
    return total


class _FlowControlStandIn(asyncio.Protocol):
    """Stands in for the app's protocol while a fallback sendfile writes: hears pause/resume_writing.

    Reading is paused meanwhile, so no data or EOF can arrive for the app's protocol to miss.
    connection_lost is passed on: the app must learn that its connection ended.
    """

    def __init__(self, loop, transport) -> None:
        self._loop = loop
        self._transport = transport
        self._app_protocol = transport.get_protocol()
        self._resume_reading = transport.is_reading()
        # A transport that had already paused its protocol will only say "resume" to us.
        self._app_was_paused = bool(getattr(transport, "_protocol_paused", False))
        self._writable: asyncio.Future | None = loop.create_future() if self._app_was_paused else None
        transport.pause_reading()
        transport.set_protocol(self)

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._writable is not None:
            await self._writable

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_exception(exc if exc is not None else ConnectionError("Connection closed by peer"))
        self._app_protocol.connection_lost(exc)

    def restore(self) -> None:
        """Hand the transport back to the app's protocol, in the flow-control state it expects."""
        if self._transport.get_protocol() is self:
            self._transport.set_protocol(self._app_protocol)
        if self._resume_reading:
            self._transport.resume_reading()
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.cancel()
        elif self._app_was_paused:
            self._app_protocol.resume_writing()
