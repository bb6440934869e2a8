"""Child processes: subprocess_exec / subprocess_shell and the transport that owns a child.

A `SubprocessTransport` is three things held together: a `subprocess.Popen` child, up to
three pipe transports (its stdin, stdout and stderr, from pipes.py), and a watch that learns
when the child exits (childwatch.py). The protocol hears about all of them, in asyncio's
order:

    connection_made(transport)
    pipe_data_received(fd, data) ...       while the child writes
    pipe_connection_lost(fd, exc)          once per pipe
    process_exited()                       when the child is reaped (before or after the pipes)
    connection_lost(None)                  last, once the child is reaped and every pipe closed

Every protocol callback is queued with call_soon, as asyncio does, so an exception in one is
reported by the loop and cannot break the pipe that delivered the data. Anything that
happens before connection_made has run (a child that exits at once) is held back until then.

`wait()` (asyncio.subprocess.Process.wait) returns once the child has exited, even if a
grandchild still holds its pipes open (Python 3.12's behaviour; 3.11 waits for the pipes).
"""

from __future__ import annotations

import asyncio
import subprocess
import warnings

from .childwatch import ChildWatch, watch_child
from .transport_errors import asyncio_logger

PIPE = subprocess.PIPE


def _check_popen_options(universal_newlines, bufsize, text, encoding, errors) -> None:
    # The transport moves bytes; decoding is the protocol's job (asyncio's rules, messages).
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


def _spawn(args, shell: bool, stdin, stdout, stderr, bufsize: int, popen_kwargs: dict) -> subprocess.Popen:
    """Start the child with `subprocess.Popen`, in the loop's thread, as asyncio does.

    fork/exec (vfork or posix_spawn where Popen can) is quick, and a failure (no such program)
    is raised straight to the caller. Popen learns of that failure by reading its error pipe
    until the child has exec'd: a short blocking `os.read`, the same asyncio's loop makes. (Kept
    in a function of its own so a blocking-call detector can be told about exactly this wait.)
    """
    return subprocess.Popen(
        args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
        universal_newlines=False, bufsize=bufsize, **popen_kwargs)


class _PipeEnd(asyncio.Protocol):
    """The protocol on one of the child's pipes: forwards everything to the SubprocessTransport."""

    def __init__(self, owner: SubprocessTransport, fd: int) -> None:
        self.owner = owner
        self.fd = fd
        self.pipe = None
        self.disconnected = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"

    def data_received(self, data: bytes) -> None:
        self.owner._pipe_data_received(self.fd, data)

    def connection_lost(self, exc) -> None:
        self.disconnected = True
        self.owner._pipe_connection_lost(self.fd, exc)

    # Flow control of the child's stdin is the subprocess protocol's business.
    def pause_writing(self) -> None:
        self.owner._protocol.pause_writing()

    def resume_writing(self) -> None:
        self.owner._protocol.resume_writing()


class SubprocessTransport(asyncio.SubprocessTransport):
    """One child process, its pipes, and the protocol that hears from them."""

    _closed = True  # until __init__ has a child to close
    _finished = True

    def __init__(self, loop, protocol, args, shell: bool, stdin, stdout, stderr, bufsize: int,
                 waiter: asyncio.Future, extra=None, **popen_kwargs) -> None:
        super().__init__(extra)
        self._loop = loop
        self._protocol = protocol
        self._returncode: int | None = None
        self._exit_waiters: list[asyncio.Future] = []
        # Protocol calls made before connection_made was delivered wait here (None after).
        self._pending: list | None = []
        # Set if connecting failed: the protocol is then never called again.
        self._connect_failed = False
        self._proc = _spawn(args, shell, stdin, stdout, stderr, bufsize, popen_kwargs)
        self._pid = self._proc.pid
        self._extra["subprocess"] = self._proc
        self._closed = self._finished = False
        # One end per pipe from the start, so the transport cannot finish before they connect.
        self._pipes: dict[int, _PipeEnd] = {
            fd: _PipeEnd(self, fd) for fd, pipe in self._child_pipes() if pipe is not None}
        self._watch: ChildWatch | None = None
        try:
            # Watch first: a child that dies at once must still be reaped.
            self._watch = watch_child(loop, self._proc, self._process_exited)
        except BaseException:
            self._abandon()
            raise
        loop._subprocess_transports().add(self)
        # Held, as a task nobody references may be garbage-collected mid-flight.
        self._connecting = loop.create_task(self._connect(waiter))

    def _child_pipes(self):
        proc = self._proc
        return ((0, proc.stdin), (1, proc.stdout), (2, proc.stderr))

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        info.append(f"pid={self._pid}")
        info.append("running" if self._returncode is None else f"returncode={self._returncode}")
        for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            end = self._pipes.get(fd)
            if end is not None:
                info.append(f"{name}={end.pipe!r}")
        return "<{}>".format(" ".join(info))

    async def _connect(self, waiter: asyncio.Future) -> None:
        """Connect the pipes through the loop's public connect_*_pipe, then the protocol.

        Going through the loop's own methods (as asyncio does) keeps pipes and subprocesses
        one mechanism, and lets a subclass or a test wrap how pipes are connected.
        """
        loop = self._loop
        try:
            for fd, pipe in self._child_pipes():
                if pipe is None:
                    continue
                end = self._pipes[fd]
                connect = loop.connect_write_pipe if fd == 0 else loop.connect_read_pipe
                end.pipe, _ = await connect(lambda end=end: end, pipe)
                if self._closed:
                    end.pipe.close()  # close() ran while we were connecting
            self._protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            # subprocess_exec() raises it, after closing us (which kills the child).
            self._connect_failed = True
            self._pending = None
            if not waiter.done():
                waiter.set_exception(exc)
            if self._returncode is not None:
                self._wake_exit_waiters()
            return
        if not waiter.done():
            waiter.set_result(None)
        pending, self._pending = self._pending, None
        for callback, args in pending:
            loop.call_soon(callback, *args)

    def _call(self, callback, *args) -> None:
        if self._connect_failed:
            return  # a protocol whose start failed hears nothing more
        if self._pending is not None:
            self._pending.append((callback, args))
        else:
            self._loop.call_soon(callback, *args)

    # ------------------------------------------------------------------ events from pipes and child

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _pipe_connection_lost(self, fd: int, exc) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _process_exited(self, returncode: int) -> None:
        if self._returncode is not None:
            return
        self._returncode = returncode
        if self._loop.get_debug():
            asyncio_logger.info("%r exited with return code %r", self, returncode)
        if self._connect_failed:
            self._wake_exit_waiters()  # subprocess_exec() is waiting to report the failure
        else:
            self._call(self._deliver_exit)
        self._try_finish()

    def _deliver_exit(self) -> None:
        try:
            self._protocol.process_exited()
        finally:
            self._wake_exit_waiters()

    def _wake_exit_waiters(self) -> None:
        waiters, self._exit_waiters = self._exit_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(self._returncode)

    def _try_finish(self) -> None:
        if self._finished or self._returncode is None:
            return
        if all(end.disconnected for end in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost)

    def _call_connection_lost(self) -> None:
        try:
            self._protocol.connection_lost(None)
        finally:
            self._wake_exit_waiters()
            self._loop._subprocess_transports().discard(self)
            self._proc = None  # signalling from now on raises ProcessLookupError, as in asyncio
            self._protocol = None

    async def _wait(self) -> int:
        """The child's return code, once it has exited (asyncio.subprocess.Process.wait uses this)."""
        if self._returncode is not None:
            return self._returncode
        waiter = self._loop.create_future()
        self._exit_waiters.append(waiter)
        return await waiter

    # ------------------------------------------------------------------ the public interface

    def get_pid(self) -> int:
        return self._pid

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int):
        end = self._pipes.get(fd)
        return None if end is None else end.pipe

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def send_signal(self, signal: int) -> None:
        self._check_proc()
        self._watch.signal(lambda: self._proc.send_signal(signal))

    def terminate(self) -> None:
        self._check_proc()
        self._watch.signal(self._proc.terminate)

    def kill(self) -> None:
        self._check_proc()
        self._watch.signal(self._proc.kill)

    def _check_proc(self) -> None:
        if self._proc is None:
            raise ProcessLookupError()  # after connection_lost, as in asyncio

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the pipes and kill the child if it is still running (asyncio's semantics).

        The protocol still hears process_exited and connection_lost afterwards.
        """
        if self._closed:
            return
        self._closed = True
        for end in self._pipes.values():
            if end.pipe is not None:  # else _connect closes it once connected
                end.pipe.close()
        if self._returncode is None and self._watch is not None:
            self._watch.signal(self._kill_unless_exited)

    def _kill_unless_exited(self) -> None:
        # The child may have exited before the watch told us: poll() first, as asyncio does.
        if self._proc.poll() is None:
            if self._loop.get_debug():
                asyncio_logger.warning("Close running child process: kill %r", self)
            self._proc.kill()

    def _abandon(self) -> bool:
        """The loop is closing (or start-up failed): kill, release the fds, leave reaping to a thread.

        No protocol callback runs any more. Returns whether the child was still running.
        """
        running = self._returncode is None and self._proc is not None
        self._closed = self._finished = True
        if self._watch is None:
            # Start-up failed before any watch existed: reap here, the child was just born.
            self._proc.kill()
            self._proc.wait()
        else:
            if running:
                self._watch.signal(self._proc.kill)
            self._watch.detach()
        for end in self._pipes.values():
            if end.pipe is not None:
                end.pipe._release()
        if self._proc is not None:
            # Pipes not connected yet, when start-up failed half-way (closing twice is harmless).
            for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()
        return running


class Subprocesses:
    """Mixin for the reactor: subprocess_exec / subprocess_shell, and reaping on close()."""

    def _subprocess_transports(self) -> set:
        """Live subprocess transports: the children close() must not leave behind."""
        return self.__dict__.setdefault("_subprocess_transport_set", set())

    async def subprocess_shell(self, protocol_factory, cmd, *, stdin=PIPE, stdout=PIPE, stderr=PIPE,
                               universal_newlines=False, shell=True, bufsize=0, encoding=None, errors=None,
                               text=None, **kwargs):
        """Run `cmd` with the shell; returns (SubprocessTransport, protocol)."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        _check_popen_options(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await self._start_subprocess(protocol, cmd, True, stdin, stdout, stderr, bufsize, **kwargs)
        return transport, protocol

    async def subprocess_exec(self, protocol_factory, program, *args, stdin=PIPE, stdout=PIPE, stderr=PIPE,
                              universal_newlines=False, shell=False, bufsize=0, encoding=None, errors=None,
                              text=None, **kwargs):
        """Run `program` with `args` (no shell); returns (SubprocessTransport, protocol)."""
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        _check_popen_options(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await self._start_subprocess(protocol, (program, *args), False, stdin, stdout, stderr,
                                                 bufsize, **kwargs)
        return transport, protocol

    async def _start_subprocess(self, protocol, args, shell, stdin, stdout, stderr, bufsize, extra=None,
                                **kwargs) -> SubprocessTransport:
        self._check_closed()
        waiter = self.create_future()
        transport = SubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr, bufsize, waiter,
                                        extra, **kwargs)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            # Cancelled, or connection_made failed: the child must not outlive the call.
            transport.close()
            await transport._wait()
            if transport._connect_failed:
                # No connection_lost will come to tidy up: release what is left here.
                transport._abandon()
                self._subprocess_transports().discard(transport)
            raise
        return transport

    def _release_resources(self) -> None:
        # Before the core closes the selector: kill children still running and hand their
        # reaping to a thread, so closing neither leaves zombies nor waits for a child to die.
        transports = self._subprocess_transports()
        abandoned = [transport for transport in list(transports) if transport._abandon()]
        transports.clear()
        for transport in abandoned:
            warnings.warn(f"event loop closed while {transport!r} was running: killed it",
                          ResourceWarning, stacklevel=3, source=transport)
        super()._release_resources()
