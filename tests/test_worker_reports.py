"""The pieces behind one stats view for all workers, each on its own: the report pipe's framing
(on a real pipe), the merge of several workers' snapshots, the loop-lag probe, and the options
of the worker life cycle as the command line, a config file and the environment give them."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from treadle.reactor import Reactor
from treadle.server.cli import build_parser, config_from_args
from treadle.server.config import Config
from treadle.server.config.files import apply_defaults
from treadle.server.observe.aggregate import Departed, combine
from treadle.server.observe.histogram import LatencyHistogram
from treadle.server.observe.lag import LagProbe
from treadle.server.observe.stats import ServerStats
from treadle.server.process.reports import MAX_PAYLOAD, Report, ReportError, ReportReader, ReportWriter


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_reports_cross_the_pipe_in_order_and_whole_whatever_the_read_sizes(pipe):
    read_fd, write_fd = pipe
    writer = ReportWriter(write_fd)
    payload = json.dumps({"server": {"x": "\x00\n" * 3000}}).encode()  # any byte, past PIPE_BUF
    for kind, data in [(Report.READY, b""), (Report.STATS, payload), (Report.BEAT, b""), (Report.RETIRE, b"")]:
        assert writer.send(kind, data)
    raw = drain(read_fd)
    for size in (1, 7, 4096, len(raw)):  # fed in pieces, as select() hands them over
        reader = ReportReader()
        messages = [m for start in range(0, len(raw), size) for m in reader.feed(raw[start : start + size])]
        assert messages == [(Report.READY, b""), (Report.STATS, payload), (Report.BEAT, b""), (Report.RETIRE, b"")]


def test_a_report_cut_short_by_a_dying_worker_is_not_delivered(pipe):
    read_fd, write_fd = pipe
    ReportWriter(write_fd).send(Report.STATS, b'{"server": {}}')
    raw = drain(read_fd)
    assert ReportReader().feed(raw[:-3]) == []  # the rest never comes: the pipe closes


@pytest.mark.parametrize("garbage", [b"x\x00\x00\x00\x00", b"s\xff\xff\xff\xff"], ids=["kind", "length"])
def test_what_is_not_a_report_is_refused(garbage):
    with pytest.raises(ReportError):
        ReportReader().feed(garbage)
    assert MAX_PAYLOAD < 0xFFFFFFFF


def test_a_supervisor_that_stops_reading_never_blocks_a_worker(pipe):
    read_fd, write_fd = pipe
    writer = ReportWriter(write_fd)
    big = b"x" * 60000
    started = time.monotonic()
    for _ in range(20):  # far more than a pipe holds (64 KiB)
        assert writer.send(Report.STATS, big)
    assert writer.send(Report.RETIRE)  # queued behind, never dropped
    assert time.monotonic() - started < 1
    reader = ReportReader()
    got = []
    while not got or got[-1][0] is not Report.RETIRE:
        got += reader.feed(drain(read_fd))
        writer.send(Report.BEAT)  # each send flushes what waits; periodic ones are skipped meanwhile
    kinds = [kind for kind, _ in got]
    assert kinds[-1] is Report.RETIRE and set(kinds[:-1]) <= {Report.STATS, Report.BEAT}
    assert all(payload == big for kind, payload in got if kind is Report.STATS)
    os.close(read_fd)
    assert writer.send(Report.BEAT) is False  # the supervisor is gone


class _State:
    def __init__(self, connections: int = 0, requests: int = 0, in_flight: int = 0) -> None:
        self.connections = set(range(connections))
        self.total_requests = requests
        self.active_requests = in_flight


def _report(latencies_ms: list[float], status: int = 200, connections: int = 0, lag: float = 0.5) -> dict:
    stats = ServerStats()
    for ms in latencies_ms:
        stats.response_done(status, ms / 1000.0, time.monotonic())
        stats.bytes_out += 100
    reactor = {"selector": "epoll", "uptime_s": 1.0, "iterations": 10, "events": 5, "max_events_per_poll": 2,
               "poll_time_s": 0.9, "callback_time_s": 0.1, "ready_queue": 0, "timers_pending": 3,
               "lag_ms": lag, "lag_max_ms": lag * 2, "events_per_poll": 0.5, "poll_share": 0.9}
    return {
        "server": stats.snapshot(_State(connections, len(latencies_ms))),
        "reactor": reactor,
        "threadpool": {"threads": 4, "busy": 1, "waiting": 2},
        "latency_buckets": [[i, c] for i, c in enumerate(stats.latency.counts) if c],
    }


def test_workers_merge_into_one_snapshot():
    fast, slow = _report([1.0] * 90, connections=3), _report([100.0] * 10, status=503, lag=4.0)
    reports = [{"worker": 1, "pid": 11, **fast}, {"worker": 2, "pid": 12, **slow}]
    merged = combine(reports, Departed(), 5.0, {"workers": 2})
    server = merged["server"]
    assert (server["requests_total"], server["responses_total"], server["latency_count"]) == (100, 100, 100)
    assert server["responses_by_class"] == {"1xx": 0, "2xx": 90, "3xx": 0, "4xx": 0, "5xx": 10}
    assert (server["connections_open"], server["bytes_out"], server["uptime_s"]) == (3, 10000, 5.0)
    # Percentiles of all the requests, not means of each worker's: p50 is fast, p95 slow.
    assert 1.0 <= server["latency_ms"]["p50"] <= 1.1 and 100.0 <= server["latency_ms"]["p95"] <= 110.0
    reactor = merged["reactor"]
    assert (reactor["iterations"], reactor["timers_pending"], reactor["lag_ms"], reactor["lag_max_ms"]) == (
        20, 6, 4.0, 8.0)
    assert reactor["poll_share"] == pytest.approx(0.9) and reactor["events_per_poll"] == 0.5
    assert merged["threadpool"] == {"threads": 8, "busy": 2, "waiting": 4}
    assert [w["pid"] for w in merged["workers"]] == [11, 12]
    assert all("latency_buckets" not in w for w in merged["workers"])


def test_a_departed_workers_counts_stay_and_its_gauges_go():
    gone, alive = _report([2.0] * 30, connections=5), _report([2.0] * 10, connections=1)
    departed = Departed()
    departed.add(gone)
    departed.add(None)  # a worker that died before it ever reported
    merged = combine([{"worker": 1, "pid": 1, **alive}, {"worker": 2, "pid": 2}], departed, 1.0, {})
    server = merged["server"]
    assert (server["requests_total"], server["latency_count"], server["connections_open"]) == (40, 40, 1)
    assert merged["reactor"]["iterations"] == 20
    histogram = LatencyHistogram()
    assert len(departed.buckets) == len(histogram.counts)
    assert merged["workers"][1] == {"worker": 2, "pid": 2}  # not reported yet: listed, not summed


def test_the_lag_probe_sees_a_blocked_loop():
    loop = Reactor()
    probe = LagProbe(loop)

    async def block_then_wait() -> None:
        probe.start()
        await asyncio.sleep(0.3)  # a few probes on an idle loop
        idle = probe.snapshot()["lag_max_ms"]
        time.sleep(0.4)  # an app that blocks the loop
        await asyncio.sleep(0.3)
        assert idle < 50
        assert probe.snapshot()["lag_max_ms"] >= 150  # a probe due during the block ran late

    try:
        loop.run_until_complete(block_then_wait())
    finally:
        probe.stop()
        loop.close()


def test_life_cycle_options_from_flags_a_file_and_the_environment():
    args = ["app:app", "--workers", "2", "--limit-max-requests", "100", "--limit-max-requests-jitter", "20",
            "--timeout-worker-healthcheck", "5", "--timeout-worker-startup", "0", "--fd", "3", "--fd", "4"]
    config = config_from_args(build_parser().parse_args(args))
    assert (config.limit_max_requests_jitter, config.timeout_worker_healthcheck, config.timeout_worker_startup) == (
        20, 5.0, None)
    assert config.fd == [3, 4]
    parser = build_parser()
    apply_defaults(parser, {"fd": [5, 6], "timeout-worker-healthcheck": 2, "request-id-header": "X-Id"}, "toml")
    apply_defaults(parser, {"limit-max-requests": "10", "limit-max-requests-jitter": "3"}, "TREADLE_*")
    config = config_from_args(parser.parse_args(["app:app"]))
    assert (config.fd, config.timeout_worker_healthcheck, config.request_id_header) == ([5, 6], 2.0, "X-Id")
    assert (config.limit_max_requests, config.limit_max_requests_jitter) == (10, 3)
    assert Config("app:app", fd=7).fd == [7]  # the Python API's single descriptor still works


@pytest.mark.parametrize(
    "options, error",
    [
        ({"limit_max_requests_jitter": 5}, "needs limit_max_requests"),
        ({"limit_max_requests": 5, "limit_max_requests_jitter": -1}, "at least 0"),
        ({"timeout_worker_healthcheck": -1}, "timeout_worker_healthcheck"),
        ({"timeout_worker_startup": -2}, "timeout_worker_startup"),
        ({"fd": [3, 3]}, "each descriptor once"),
        ({"limit_request_id_length": 0}, "limit_request_id_length"),
    ],
)
def test_life_cycle_options_refuse_what_cannot_work(options, error):
    with pytest.raises(ValueError, match=error):
        Config("app:app", **options)
