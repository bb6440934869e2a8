"""The reactor's live counters and per-poll trace (reactor/introspect.py), on real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import pytest

from treadle import reactor
from treadle.reactor.introspect import enable_stats, enable_trace, format_record, trace_writer


@pytest.fixture
def loop():
    loop = reactor.new_event_loop()
    yield loop
    loop.close()


def test_an_idle_loop_barely_iterates_and_spends_its_time_polling(loop):
    stats = enable_stats(loop)
    loop.run_until_complete(asyncio.sleep(0.3))
    snap = stats.snapshot()
    # Start the task, sleep (one long poll), wake and finish: a handful of passes, not a spin.
    assert 1 <= snap["iterations"] <= 10
    assert snap["poll_share"] > 0.9
    assert snap["poll_time_s"] >= 0.25
    assert snap["callback_time_s"] < snap["poll_time_s"]


def test_counts_one_event_per_readiness_and_sees_queue_and_timers(loop):
    stats = enable_stats(loop)
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    got = []

    async def main():
        reader_done = loop.create_future()

        def on_readable():
            got.append(a.recv(100))
            if len(got) == 5:
                reader_done.set_result(None)

        loop.add_reader(a.fileno(), on_readable)
        for i in range(5):
            before = stats.snapshot()["events"]
            b.send(b"x%d" % i)
            while len(got) <= i:
                await asyncio.sleep(0)
            assert stats.snapshot()["events"] == before + 1  # one READ per message
        await reader_done
        loop.remove_reader(a.fileno())
        timers = [loop.call_later(3600, lambda: None) for _ in range(3)]
        for _ in range(4):
            loop.call_soon(lambda: None)
        snap = stats.snapshot()
        for timer in timers:
            timer.cancel()
        return snap

    try:
        snap = loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    assert got == [b"x0", b"x1", b"x2", b"x3", b"x4"]
    assert snap["timers_pending"] == 3
    assert snap["ready_queue"] == 4
    assert snap["events"] == 5
    assert snap["max_events_per_poll"] == 1


def test_enable_stats_is_idempotent(loop):
    assert enable_stats(loop) is enable_stats(loop)


def test_trace_records_a_read_on_the_connection_fd_and_the_callbacks_run(loop):
    records = []
    enable_trace(loop, records.append)

    async def main():
        accepted = loop.create_future()

        def on_connect(reader, writer):
            accepted.set_result(writer.get_extra_info("socket").fileno())
            return handle(reader, writer)

        async def handle(reader, writer):
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        fd = await accepted
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        server.close()
        await server.wait_closed()
        return fd

    fd = loop.run_until_complete(main())
    reads = [r for r in records if any(e["fd"] == fd and e["events"] == ["READ"] for e in r["events"])]
    assert reads, records
    record = reads[0]
    assert {"poll", "t_ms", "timeout_ms", "wait_ms", "queued", "events", "callbacks"} <= set(record)
    assert any(e["handler"] == "SocketTransport._read_ready" for e in record["events"])
    assert any(c["name"] == "SocketTransport._read_ready" and c["ms"] >= 0 for c in record["callbacks"])
    assert [r["poll"] for r in records] == list(range(1, len(records) + 1))
    line = format_record(record)
    assert f"fd {fd} READ -> SocketTransport._read_ready" in line.splitlines()[0]
    assert any(cb.strip().endswith("SocketTransport._read_ready") for cb in line.splitlines()[1:])


def test_trace_writer_json_lines_and_text(loop):
    for as_json in (True, False):
        out = io.StringIO()
        tracer = enable_trace(loop, trace_writer(out, as_json))
        loop.run_until_complete(asyncio.sleep(0.01))
        tracer.flush()
        lines = out.getvalue().splitlines()
        assert lines
        if as_json:
            records = [json.loads(line) for line in lines]
            assert records[0]["poll"] == 1
            assert any(r["timeout_ms"] and r["wait_ms"] >= 5 for r in records)  # the sleep's poll
        else:
            assert lines[0].startswith("poll #1 at ")
            assert any(line.startswith("    ") for line in lines)


def test_a_failing_callback_is_still_timed_and_reported(loop):
    records = []
    tracer = enable_trace(loop, records.append)
    errors = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context["exception"]))

    def boom():
        raise ValueError("boom")

    loop.call_soon(boom)
    loop.run_until_complete(asyncio.sleep(0))
    tracer.flush()
    assert [type(e) for e in errors] == [ValueError]
    assert any(c["name"] == "test_a_failing_callback_is_still_timed_and_reported.<locals>.boom"
               for r in records for c in r["callbacks"])


def test_a_callback_that_cancels_its_own_handle_keeps_its_name(loop):
    records = []
    tracer = enable_trace(loop, records.append)

    def closes_itself():
        handle.cancel()  # as a transport does when a read finds the peer gone

    handle = loop.call_soon(closes_itself)
    loop.run_until_complete(asyncio.sleep(0))
    tracer.flush()
    names = [c["name"] for r in records for c in r["callbacks"]]
    assert any(name.endswith("closes_itself") for name in names), names


def test_the_reactor_offers_introspection_as_methods(loop):
    stats = loop.enable_stats()
    assert stats is enable_stats(loop)
    records = []
    tracer = loop.enable_trace(records.append)
    loop.run_until_complete(asyncio.sleep(0))
    tracer.flush()
    assert records and stats.snapshot()["iterations"] >= len(records)
