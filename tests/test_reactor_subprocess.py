"""Child processes on the Reactor: subprocess_exec/shell, asyncio's streams API, signals, reaping.

Every test runs real children (the test's own Python, or /bin/sh utilities) and waits for
conditions with deadlines. Tests that matter for the exit watcher run twice: with a pidfd
(Linux >= 5.3) and with the thread-per-child fallback. No child outlives its test: each is
waited for, and `_assert_reaped` proves the ones the loop had to kill are gone from /proc.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from treadle import reactor
from treadle.reactor import childwatch

PY = sys.executable
PIPE = asyncio.subprocess.PIPE
DEADLINE = 10.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the reactor's subprocesses need POSIX")


@pytest.fixture(params=["pidfd", "thread"])
def watcher(request, monkeypatch):
    """Run the test with each way of watching children."""
    if request.param == "pidfd":
        if childwatch._open_pidfd(os.getpid()) is None:
            pytest.skip("os.pidfd_open is not available here")
    else:
        monkeypatch.setattr(childwatch, "_open_pidfd", lambda pid: None)
    return request.param


def _assert_reaped(pid: int, timeout: float = DEADLINE) -> None:
    """The child is gone from the process table: not running, and not a zombie either.

    Checked through /proc, never with waitpid, which would reap the child itself and so
    hide a missing reap.
    """
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc to observe zombies without reaping them")
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            raise AssertionError(f"child {pid} still in the process table, state {state!r}")
        time.sleep(0.005)


class Recorder(asyncio.SubprocessProtocol):
    """Records every callback, in order; `done` settles in connection_lost."""

    def __init__(self) -> None:
        self.events: list = []
        self.data: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.done = asyncio.get_running_loop().create_future()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.events.append("connection_made")

    def pipe_data_received(self, fd, data) -> None:
        self.events.append(("data", fd))
        self.data[fd] += data

    def pipe_connection_lost(self, fd, exc) -> None:
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self) -> None:
        self.events.append("process_exited")

    def connection_lost(self, exc) -> None:
        self.events.append("connection_lost")
        self.done.set_result(exc)


# ---------------------------------------------------------------------- the streams API


def test_exec_stdout_and_returncode(watcher):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print('hello'); sys.exit(3)", stdout=PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
        return out, err, proc.returncode

    assert reactor.run(main()) == (b"hello\n", None, 3)


@pytest.mark.parametrize("selector", reactor.available_selectors())
def test_every_selector_backend(watcher, selector):
    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(b"x" * 300_000), DEADLINE)
        return len(out), proc.returncode

    assert reactor.run(main(), selector=selector) == (300_000, 0)


def test_shell_with_stderr_and_exit_code(watcher):
    async def main():
        proc = await asyncio.create_subprocess_shell("echo $((40 + 2)) >&2; exit 7", stderr=PIPE)
        err = await asyncio.wait_for(proc.stderr.read(), DEADLINE)
        return err, await asyncio.wait_for(proc.wait(), DEADLINE)

    assert reactor.run(main()) == (b"42\n", 7)


def test_stdin_stdout_stderr_are_separate_pipes():
    code = "import sys; d = sys.stdin.read(); sys.stdout.write(d.upper()); sys.stderr.write(d.lower())"

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdin=PIPE, stdout=PIPE, stderr=PIPE)
        return await asyncio.wait_for(proc.communicate(b"MiXeD"), DEADLINE), proc.returncode

    assert reactor.run(main()) == ((b"MIXED", b"mixed"), 0)


def test_stderr_to_stdout():
    async def main():
        proc = await asyncio.create_subprocess_shell("echo out; echo err >&2", stdout=PIPE,
                                                     stderr=subprocess.STDOUT)
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
        return sorted(out.split()), err

    assert reactor.run(main()) == ([b"err", b"out"], None)


def test_communicate_several_mib_both_ways(watcher):
    # 6 MiB in, 12 MiB out: far beyond any pipe buffer (64 KiB) and the write watermark, so
    # it only completes if stdin writing pauses and resumes while stdout is read concurrently.
    payload = os.urandom(6 * 1024 * 1024)
    code = "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d + d[::-1])"

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdin=PIPE, stdout=PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(payload), DEADLINE)
        return out, proc.returncode

    out, returncode = reactor.run(main())
    assert returncode == 0
    assert out == payload + payload[::-1]


def test_stdin_flow_control_pauses_and_resumes_the_protocol():
    payload = os.urandom(4 * 1024 * 1024)

    class Cat(Recorder):
        def pause_writing(self) -> None:
            self.events.append("pause_writing")

        def resume_writing(self) -> None:
            self.events.append("resume_writing")

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(Cat, "cat", stderr=None)
        stdin = transport.get_pipe_transport(0)
        stdin.write(payload)  # the pipe takes 64 KiB at most; the rest is buffered
        assert stdin.get_write_buffer_size() > 64 * 1024
        assert "pause_writing" in proto.events
        stdin.close()  # flushed first, then the child sees EOF
        await asyncio.wait_for(proto.done, DEADLINE)
        transport.close()
        return proto, transport.get_returncode()

    proto, returncode = reactor.run(main())
    assert returncode == 0
    assert bytes(proto.data[1]) == payload
    assert proto.events.index("pause_writing") < proto.events.index("resume_writing")


def test_communicate_with_a_child_that_never_reads_stdin(watcher):
    # The child exits without reading: stdin's reader vanishes with megabytes still buffered.
    # communicate() ignores the broken pipe (asyncio's contract) and reports the exit code.
    async def main():
        proc = await asyncio.create_subprocess_exec("sh", "-c", "exit 2", stdin=PIPE, stdout=PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(b"z" * (4 * 1024 * 1024)), DEADLINE)
        return out, proc.returncode

    assert reactor.run(main()) == (b"", 2)


def test_cancelling_the_start_kills_and_reaps_the_child(watcher):
    made = []

    class Remember(asyncio.SubprocessProtocol):
        def connection_made(self, transport) -> None:
            made.append(transport)

    async def main():
        loop = asyncio.get_running_loop()
        starting = asyncio.ensure_future(loop.subprocess_exec(Remember, "sleep", "30"))
        await asyncio.sleep(0)  # the child is spawned; the pipes are still connecting
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(starting, DEADLINE)
        # subprocess_exec waited for the killed child before re-raising the cancellation.
        return made[0].get_returncode(), made[0].get_pid()

    returncode, pid = reactor.run(main())
    assert returncode == -signal.SIGKILL
    _assert_reaped(pid)


def test_process_that_exits_before_we_read(watcher):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "print('x' * 1000)", stdout=PIPE)
        returncode = await asyncio.wait_for(proc.wait(), DEADLINE)
        assert proc.returncode == returncode == 0
        # The child is gone; what it wrote is still in the pipe.
        return await asyncio.wait_for(proc.stdout.read(), DEADLINE)

    assert reactor.run(main()) == b"x" * 1000 + b"\n"


def test_wait_returns_when_the_child_exits_even_if_a_grandchild_holds_the_pipe():
    async def main():
        proc = await asyncio.create_subprocess_shell("sleep 30 & echo started", stdout=PIPE,
                                                     start_new_session=True)
        try:
            assert await asyncio.wait_for(proc.stdout.readline(), DEADLINE) == b"started\n"
            return await asyncio.wait_for(proc.wait(), DEADLINE)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the grandchild `sleep`
            await asyncio.wait_for(proc.stdout.read(), DEADLINE)  # EOF once it is dead

    assert reactor.run(main()) == 0


# ---------------------------------------------------------------------- signals


@pytest.mark.parametrize("method, expected", [("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM)])
def test_kill_and_terminate(watcher, method, expected):
    async def main():
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        getattr(proc, method)()
        return await asyncio.wait_for(proc.wait(), DEADLINE)

    assert reactor.run(main()) == expected


def test_send_signal_reaches_the_childs_handler(watcher):
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGUSR1, lambda *a: (print('got it', flush=True), sys.exit(5)))\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code, stdout=PIPE)
        assert await asyncio.wait_for(proc.stdout.readline(), DEADLINE) == b"ready\n"
        proc.send_signal(signal.SIGUSR1)
        assert await asyncio.wait_for(proc.stdout.read(), DEADLINE) == b"got it\n"
        return await asyncio.wait_for(proc.wait(), DEADLINE)

    assert reactor.run(main()) == 5


def test_signalling_after_exit(watcher):
    async def main():
        loop = asyncio.get_running_loop()
        # A grandchild holding stdout keeps the transport alive after the child is reaped.
        transport, proto = await loop.subprocess_exec(
            Recorder, "sh", "-c", "sleep 30 & exit 0", stdin=None, stderr=None, start_new_session=True)
        try:
            assert await asyncio.wait_for(transport._wait(), DEADLINE) == 0
            transport.kill()  # exited and reaped: a no-op, never a signal to a recycled pid
            assert not proto.done.done()
        finally:
            os.killpg(transport.get_pid(), signal.SIGKILL)  # the grandchild: stdout reaches EOF
        await asyncio.wait_for(proto.done, DEADLINE)
        # Once connection_lost has been delivered, asyncio raises ProcessLookupError.
        with pytest.raises(ProcessLookupError):
            transport.send_signal(signal.SIGTERM)
        transport.close()

    reactor.run(main())


# ---------------------------------------------------------------------- the protocol's view


def test_callbacks_come_in_asyncio_order(watcher):
    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Recorder, PY, "-c", "import sys; sys.stdout.write('o'); sys.stderr.write('e')")
        assert transport.get_pid() > 0
        assert {fd: transport.get_pipe_transport(fd) is not None for fd in (0, 1, 2, 3)} == \
            {0: True, 1: True, 2: True, 3: False}
        assert await asyncio.wait_for(proto.done, DEADLINE) is None
        transport.close()
        return proto, transport

    proto, transport = reactor.run(main())
    events = proto.events
    assert events[0] == "connection_made"
    assert events[-1] == "connection_lost"
    assert events.count("process_exited") == 1
    assert sorted(e[1] for e in events if e[0] == "pipe_lost") == [0, 1, 2]
    for fd in (1, 2):
        assert events.index(("data", fd)) < events.index(("pipe_lost", fd, None))
    assert (bytes(proto.data[1]), bytes(proto.data[2])) == (b"o", b"e")
    assert transport.get_returncode() == 0
    assert "returncode=0" in repr(transport)


def test_closing_the_transport_kills_the_child(watcher):
    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(Recorder, "sleep", "30")
        transport.close()
        assert transport.is_closing()
        await asyncio.wait_for(proto.done, DEADLINE)
        return transport.get_returncode(), proto.events

    returncode, events = reactor.run(main())
    assert returncode == -signal.SIGKILL
    assert events.index("process_exited") < events.index("connection_lost")


def test_writing_to_a_child_that_exited_reports_the_closed_stdin(watcher):
    async def main():
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(Recorder, "true", stdout=None, stderr=None)
        await asyncio.wait_for(proto.done, DEADLINE)  # needs stdin's pipe_connection_lost
        transport.close()
        return proto.events

    events = reactor.run(main())
    # The reader's end closed: seen by watching stdin's fd, without writing to it.
    assert ("pipe_lost", 0, None) in events


# ---------------------------------------------------------------------- the loop closing


def test_closing_the_loop_kills_and_reaps_a_running_child(watcher):
    loop = reactor.new_event_loop()
    try:
        transport, _ = loop.run_until_complete(loop.subprocess_exec(asyncio.SubprocessProtocol, "sleep", "30"))
        pid = transport.get_pid()
        stdout = transport.get_pipe_transport(1)
    finally:
        started = time.monotonic()
        with pytest.warns(ResourceWarning, match="was running: killed it"):
            loop.close()
    assert time.monotonic() - started < 1.0  # no waiting for the child to die
    _assert_reaped(pid)
    assert stdout.is_closing() and stdout._pipe is None  # the pipes' fds were released


def test_reactor_run_reaps_a_child_left_running(watcher):
    pids = []

    async def main():
        proc = await asyncio.create_subprocess_exec("sleep", "30", stdout=PIPE)
        pids.append(proc.pid)

    with pytest.warns(ResourceWarning):
        reactor.run(main())
    _assert_reaped(pids[0])


def test_closing_the_loop_after_the_child_exited_is_quiet(watcher, recwarn):
    async def main():
        proc = await asyncio.create_subprocess_exec("true")
        await asyncio.wait_for(proc.wait(), DEADLINE)
        return proc.pid

    pid = reactor.run(main())
    _assert_reaped(pid)
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


# ---------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"universal_newlines": True}, "universal_newlines must be False"),
        ({"text": True}, "text must be False"),
        ({"encoding": "utf-8"}, "encoding must be None"),
        ({"errors": "strict"}, "errors must be None"),
        ({"bufsize": 1}, "bufsize must be 0"),
    ],
)
def test_text_mode_options_are_refused(kwargs, message):
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match=f"^{message}$"):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, "true", **kwargs)
        with pytest.raises(ValueError, match=f"^{message}$"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, "true", **kwargs)

    reactor.run(main())


def test_shell_and_exec_argument_checks():
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="^cmd must be a string$"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, ["echo", "hi"])
        with pytest.raises(ValueError, match="^shell must be True$"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, "true", shell=False)
        with pytest.raises(ValueError, match="^shell must be False$"):
            await loop.subprocess_exec(asyncio.SubprocessProtocol, "true", shell=True)
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/treadle-no-such-program")
        assert not loop._subprocess_transports()
        # bytes commands are fine
        proc = await asyncio.create_subprocess_shell(b"exit 4")
        return await asyncio.wait_for(proc.wait(), DEADLINE)

    assert reactor.run(main()) == 4


def test_failing_connection_made_kills_the_child(watcher):
    class Broken(asyncio.SubprocessProtocol):
        def connection_made(self, transport) -> None:
            self.transport = transport
            raise RuntimeError("protocol refuses")

    made = []

    def factory():
        made.append(Broken())
        return made[-1]

    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="protocol refuses"):
            await loop.subprocess_exec(factory, "sleep", "30")
        return made[0].transport

    transport = reactor.run(main())
    assert transport.get_returncode() == -signal.SIGKILL
    _assert_reaped(transport.get_pid())
