"""Parts of the loop's contract that Python 3.12 and 3.13 changed, which CPython's suites found
the Reactor missing (docs/reactor-conformance.md), pinned by tests of our own.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import sys
import tempfile

import pytest

from treadle import reactor

NAME = contextvars.ContextVar("name", default="outside")

needs_312 = pytest.mark.skipif(sys.version_info < (3, 12), reason="Task/Handle.get_context() are 3.12+")


def _handler_sees(schedule) -> list:
    """What NAME reads inside a custom exception handler, for an error `schedule(loop)` causes."""
    seen = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: seen.append(NAME.get()))
        schedule(loop)
        for _ in range(3):
            await asyncio.sleep(0)

    reactor.run(main())
    return seen


def _set_then_fail() -> None:
    NAME.set("inside")
    raise ZeroDivisionError


@needs_312
def test_the_exception_handler_runs_in_the_failing_callbacks_context() -> None:
    assert _handler_sees(lambda loop: loop.call_soon(_set_then_fail)) == ["inside"]


@needs_312
def test_the_exception_handler_runs_in_the_failing_tasks_context() -> None:
    async def task():
        _set_then_fail()

    def start(loop) -> None:
        loop.create_task(task())  # never awaited: "Task exception was never retrieved" when collected

    assert _handler_sees(start) == ["inside"]


@pytest.fixture
def socket_path():
    with tempfile.TemporaryDirectory() as folder:
        yield os.path.join(folder, "s")


def _file_left_after_closing(socket_path: str, bind_first: bool, **kwargs) -> bool:
    """Serve on `socket_path` (bound by us first and handed over as `sock=`, or by the loop from
    `path=`), close the server, and say whether the socket file is still there."""

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_UNIX) as sock:
            if bind_first:
                sock.bind(socket_path)
                kwargs["sock"] = sock
            else:
                kwargs["path"] = socket_path
            server = await loop.create_unix_server(asyncio.Protocol, **kwargs)
            server.close()
            await server.wait_closed()
            return os.path.exists(socket_path)

    return reactor.run(main())


def test_closing_a_unix_server_removes_the_socket_file_it_bound(socket_path) -> None:
    assert _file_left_after_closing(socket_path, bind_first=False) is False


def test_a_handed_sockets_file_is_removed_from_313_and_left_to_the_caller_before(socket_path) -> None:
    assert _file_left_after_closing(socket_path, bind_first=True) is (sys.version_info < (3, 13))


def test_cleanup_socket_false_keeps_the_file(socket_path) -> None:
    assert _file_left_after_closing(socket_path, bind_first=False, cleanup_socket=False) is True


def test_closing_a_unix_server_keeps_a_socket_file_bound_there_since(socket_path) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_unix_server(asyncio.Protocol, path=socket_path)
        os.unlink(socket_path)
        with socket.socket(socket.AF_UNIX) as other:
            other.bind(socket_path)  # someone else's socket, at the same path
            server.close()
            await server.wait_closed()
            return os.path.exists(socket_path)

    assert reactor.run(main()) is True
