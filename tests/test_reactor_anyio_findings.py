"""What anyio's test suite found on the Reactor (tests/anyio_conformance.py), pinned by tests of our own.

Each of these passed on asyncio's loop and failed on the Reactor when anyio's suite ran on both;
each test here fails on the code before its fix.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import socket
import struct
import sys
import threading

import pytest

from treadle import reactor
from treadle.reactor.waker import Waker

DEADLINE = 10.0


class Recorder(asyncio.Protocol):
    def __init__(self, loop) -> None:
        self.lost = loop.create_future()

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def _reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@pytest.mark.parametrize("side", ["read", "write"])
def test_a_peer_reset_goes_to_connection_lost_and_never_to_the_exception_handler(side) -> None:
    # anyio's test runner fails a test on any exception-handler call; asyncio's transports give
    # an OSError to connection_lost only, in debug mode too (anyio runs its tests in debug mode).
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        errors = []
        loop.set_exception_handler(lambda loop, context: errors.append(context))
        with socket.create_server(("127.0.0.1", 0)) as listener:
            transport, protocol = await loop.create_connection(
                lambda: Recorder(loop), "127.0.0.1", listener.getsockname()[1])
            conn, _ = listener.accept()  # the handshake is done: this does not block
        if side == "write":
            transport.pause_reading()  # so the reset is met by send(), not by recv()
        _reset(conn)
        if side == "write":
            # The first send after an RST fails (ECONNRESET or EPIPE); before the RST has
            # arrived a send may still succeed, so keep writing until the transport gives up.
            while not protocol.lost.done():
                transport.write(b"x" * 1024)
                await asyncio.sleep(0.01)
        exc = await asyncio.wait_for(protocol.lost, DEADLINE)
        return exc, errors

    exc, errors = reactor.run(main())
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError)), exc
    assert errors == []


@pytest.mark.skipif(sys.implementation.name == "pypy", reason="gc.get_referrers is unreliable on PyPy")
def test_a_failed_connect_leaves_no_reference_cycle() -> None:
    # The error's traceback holds the frames that held the list of errors, which held the error.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def main():
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        except OSError as exc:
            assert isinstance(exc, ConnectionRefusedError)
            # What holds `exc` as a local (this coroutine, its frame, and on older Pythons the
            # frames in its traceback) is no cycle of the loop's making; anything else is.
            return [repr(ref) for ref in gc.get_referrers(exc)
                    if not (inspect.isframe(ref) or inspect.iscoroutine(ref))]
        raise AssertionError("connected to a closed port")

    assert reactor.run(main()) == []


class Done(Exception):
    pass


@pytest.mark.skipif(sys.implementation.name == "pypy", reason="gc.get_referrers is unreliable on PyPy")
@pytest.mark.parametrize("debug", [False, True])
def test_a_failed_tasks_error_is_not_kept_alive_by_the_loop(debug) -> None:
    # The task's error holds its traceback, whose frames outlive their calls and so keep their
    # callers' frames: had the loop's pass kept the last handle it ran in a local, that handle
    # would hold the task, and the task its error (anyio's test_exception_refcycles_parent_task;
    # before the fix this failed on 3.13, whose finished frames keep their callers' frames).
    async def main():
        async def child():
            raise Done

        task = asyncio.get_running_loop().create_task(child())
        try:
            await task
        except Done as exc:
            error = exc
        del task
        # Resume from a callback of our own: the one that woke us from `await task` holds the task.
        await asyncio.sleep(0)
        return [repr(ref) for ref in gc.get_referrers(error)
                if not (inspect.isframe(ref) or inspect.iscoroutine(ref))]

    assert reactor.run(main(), debug=debug) == []


def test_a_host_given_as_bytes_is_not_decoded_as_idna_2003() -> None:
    # anyio passes hosts IDNA-2008-encoded, as bytes: "faß.de" is b"xn--fa-hia.de", which Python's
    # IDNA 2003 codec refuses to decode. It is a name, not an IP literal, so it is resolved as one
    # (AI_NUMERICHOST makes that fail at once, without asking any DNS server).
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo(b"xn--fa-hia.de", 80, flags=socket.AI_NUMERICHOST)
        return await loop.getaddrinfo(b"127.0.0.1", 80, type=socket.SOCK_STREAM)

    infos = reactor.run(main())
    assert [info[4] for info in infos] == [("127.0.0.1", 80)]


def test_waking_a_closed_waker_does_nothing() -> None:
    # A worker thread's call_soon_threadsafe can pass the loop's "closed?" check just before the
    # loop's thread closes it; its wake-up then meets a closed waker, which must shrug.
    waker = Waker()
    waker.wake()
    waker.close()
    waker.wake()


def test_a_wake_up_that_interrupts_a_wake_up_returns(monkeypatch) -> None:
    # A signal handler calling call_soon_threadsafe runs between two bytecodes of the main
    # thread, possibly inside another wake(): wake() must take no lock (one did, and a second
    # SIGINT arriving during the first one's handler hung the server: test_cli's
    # test_second_signal_forces_shutdown). Simulated: the write itself wakes again, once.
    waker = Waker()
    nested = []

    def interrupting(write):
        def wrapped(*args):
            if not nested:
                nested.append(True)
                waker.wake()  # what the signal handler would do, mid-wake
            return write(*args)

        return wrapped

    if waker._eventfd >= 0:
        monkeypatch.setattr(os, "eventfd_write", interrupting(os.eventfd_write))
    else:
        wrapped = type("Wrapped", (), {"send": staticmethod(interrupting(waker._wsock.send))})
        monkeypatch.setattr(waker, "_wsock", wrapped())
    done = threading.Event()
    threading.Thread(target=lambda: (waker.wake(), done.set()), daemon=True).start()
    assert done.wait(DEADLINE), "wake() deadlocked on itself"
    assert nested == [True]
    monkeypatch.undo()
    waker.close()
