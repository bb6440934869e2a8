"""Server counters under a known load, the stats endpoint in both formats, the periodic log."""

from __future__ import annotations

import collections
import json
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import request, text_app, wait_until

from treadle.server.cli import build_parser, config_from_args
from treadle.server.config import Config
from treadle.server.observe.histogram import LatencyHistogram
from treadle.server.observe.observer import summary_line
from treadle.server.observe.stats import ServerStats

# One sample line of the text exposition format: name, optional {labels}, value.
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_]+="[^"]*"(,[a-zA-Z_]+="[^"]*")*\})? (\S+)$')


def parse_prometheus(text: str) -> dict[str, float]:
    """Strictly parse exposition text: every sample belongs to a family declared by # TYPE."""
    types: dict[str, str] = {}
    samples: dict[str, float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
            assert name not in types, f"family declared twice: {name}"
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.group(1), match.group(2) or "", match.group(4)
        family = re.sub(r"_(sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample before its # TYPE: {line!r}"
        samples[name + labels] = float(value)
    return samples


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["content-type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["content-type"], exc.read().decode()


def test_fifty_requests_are_counted_exactly(serve):
    srv = serve(text_app(b"hello"))
    stats = srv.state.stats
    sent = 0
    with srv.connect() as c:
        for i in range(50):
            data = request("POST", f"/n/{i}", body=b"x" * i)
            c.send(data)
            sent += len(data)
            resp = c.read_response()
            assert resp.status == 200
    wait_until(lambda: stats.responses == 50)
    assert srv.state.total_requests == 50
    assert stats.by_status_class[2] == 50 and sum(stats.by_status_class) == 50
    assert stats.bytes_in == sent  # exactly what was sent: nothing else reached this server
    received = 50 * len(b"hello")
    assert stats.bytes_out > received  # bodies plus heads
    assert stats.latency.count == 50
    snap = stats.snapshot(srv.state)
    assert snap["requests_total"] == 50 and snap["requests_in_flight"] == 0
    assert snap["connections_open"] in (0, 1)
    assert 0 < snap["latency_ms"]["p50"] <= snap["latency_ms"]["p95"] <= snap["latency_ms"]["p99"]


def test_error_responses_are_counted_by_class(serve):
    srv = serve(text_app(b"no", status=503))
    with srv.connect() as c:
        for _ in range(3):
            c.send(request())
            assert c.read_response().status == 503
    wait_until(lambda: srv.state.stats.responses == 3)
    assert srv.state.stats.by_status_class[5] == 3


def test_histogram_percentiles_err_on_the_slow_side_within_a_bucket():
    hist = LatencyHistogram()
    for ms in range(1, 101):
        hist.add(ms / 1000.0)
    for fraction in (0.5, 0.95, 0.99):
        true = fraction * 100 / 1000.0
        assert true <= hist.percentile(fraction) <= true * 1.1 + 1e-9
    assert LatencyHistogram().percentile(0.5) is None
    assert len(hist.counts) == len(LatencyHistogram.bounds) + 1  # fixed size, whatever the load


def test_requests_per_second_over_the_last_complete_seconds():
    stats = ServerStats()
    start = float(int(stats.started)) + 0.5
    for second in range(3):
        for _ in range(10 * (second + 1)):
            stats.response_done(200, 0.001, start + second)
    # At start+3.5 the complete seconds since start are 3: 10 + 20 + 30 responses.
    assert stats.requests_per_second(start + 3) == pytest.approx(60 / 3)
    assert stats.requests_per_second(start + 30) == 0.0  # all of it has left the window


def test_stats_endpoint_json_and_prometheus(serve):
    srv = serve(text_app(b"hi"), stats_port=0)
    host, port = srv.server.observer.endpoint.address
    base = f"http://{host}:{port}"
    with srv.connect() as c:
        for _ in range(7):
            c.send(request())
            assert c.read_response().status == 200
    wait_until(lambda: srv.state.stats.responses == 7)

    status, ctype, body = get(base + "/stats")
    assert status == 200 and ctype == "application/json"
    snap = json.loads(body)
    assert snap["server"]["requests_total"] == 7
    assert snap["server"]["responses_by_class"]["2xx"] == 7
    assert snap["reactor"]["iterations"] > 0 and snap["reactor"]["events"] > 0
    assert "threadpool" not in snap  # no WSGI pool in this server

    status, ctype, body = get(base + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    samples = parse_prometheus(body)
    assert samples["treadle_requests_total"] == 7
    assert samples['treadle_responses_total{class="2xx"}'] == 7
    assert samples["treadle_request_duration_seconds_count"] == 7
    assert 0 < samples['treadle_request_duration_seconds{quantile="0.95"}'] < 5
    assert samples["treadle_loop_iterations_total"] > 0
    assert samples["treadle_received_bytes_total"] == srv.state.stats.bytes_in

    status, ctype, page = get(base + "/")
    assert status == 200 and ctype == "text/html; charset=utf-8" and 'fetch("stats"' in page  # the dashboard
    assert get(base + "/nothing")[0] == 404
    # The app's port knows nothing of /stats: the two never mix.
    with srv.connect() as c:
        c.send(request("GET", "/stats"))
        assert c.read_response().body == b"hi"


def test_stats_endpoint_stops_with_the_server(serve):
    srv = serve(text_app(), stats_port=0)
    host, port = srv.server.observer.endpoint.address
    assert get(f"http://{host}:{port}/stats")[0] == 200
    srv.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{host}:{port}/stats", timeout=2)


def test_stats_port_in_use_fails_startup_cleanly(serve):
    first = serve(text_app(), stats_port=0)
    _, taken = first.server.observer.endpoint.address
    with pytest.raises(OSError):
        serve(text_app(), stats_port=taken)


def test_stats_interval_logs_a_summary_line(serve, caplog):
    caplog.set_level(logging.INFO, logger="treadle.stats")
    srv = serve(text_app(), stats_interval=0.05)
    with srv.connect() as c:
        c.send(request())
        c.read_response()
    line = wait_until(
        lambda: next((r.getMessage() for r in caplog.records if r.name == "treadle.stats" and "1 requests" in
                      r.getMessage()), None)
    )
    assert "req/s" in line and "loop " in line and "busy" in line


def test_summary_line_includes_the_thread_pool_when_present():
    stats = ServerStats()

    class State:
        connections: set = set()
        total_requests = active_requests = 0

    line = summary_line({"server": stats.snapshot(State()), "threadpool": {"threads": 4, "busy": 3, "waiting": 2}})
    assert "pool 3/4 busy, 2 queued" in line


def test_cli_flags_reach_the_config():
    args = build_parser().parse_args(
        ["app:app", "--stats-port", "9100", "--stats-host", "0.0.0.0", "--stats-interval", "5",
         "--trace-reactor", "t.jsonl"]
    )
    config = config_from_args(args)
    assert (config.stats_port, config.stats_host, config.stats_interval, config.trace_reactor) == (
        9100, "0.0.0.0", 5.0, "t.jsonl")
    config = config_from_args(build_parser().parse_args(["app:app", "--trace-reactor"]))
    assert config.trace_reactor == "-"
    config = config_from_args(build_parser().parse_args(["app:app"]))
    assert (config.stats_port, config.stats_interval, config.trace_reactor) == (None, None, None)


def test_trace_reactor_file_shows_a_read_on_the_connection(serve, tmp_path):
    trace = tmp_path / "trace.jsonl"
    srv = serve(text_app(), trace_reactor=str(trace))
    with srv.connect() as c:
        conn = wait_until(lambda: next(iter(srv.state.connections), None))
        fd = conn.transport.get_extra_info("socket").fileno()
        c.send(request())
        assert c.read_response().status == 200
    srv.stop()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    reads = [r for r in records if {"fd": fd, "events": ["READ"], "handler": "SocketTransport._read_ready"}
             in r["events"]]
    assert reads
    assert any(c["name"] == "SocketTransport._read_ready" for c in reads[0]["callbacks"])


def test_stats_show_the_wsgi_pool_busy_and_queued(serve):
    release = threading.Event()
    entered = threading.Semaphore(0)

    def blocking_wsgi(environ, start_response):
        entered.release()
        release.wait(10)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    srv = serve(blocking_wsgi, threads=2, stats_port=0)
    host, port = srv.server.observer.endpoint.address
    clients = [srv.connect() for _ in range(3)]
    try:
        for c in clients:
            c.send(request())
        for _ in range(2):
            assert entered.acquire(timeout=5)

        def pool() -> dict:
            return json.loads(get(f"http://{host}:{port}/stats")[2])["threadpool"]

        wait_until(lambda: pool()["waiting"] == 1)
        assert pool() == {"threads": 2, "busy": 2, "waiting": 1}
        assert "treadle_threadpool_queued 1" in get(f"http://{host}:{port}/metrics")[2]
        release.set()
        assert [c.read_response().status for c in clients] == [200, 200, 200]
    finally:
        release.set()
        for c in clients:
            c.close()


def test_summary_line_reports_the_loop_over_the_last_interval():
    stats = ServerStats()

    class State:
        connections: set = set()
        total_requests = active_requests = 0

    server = stats.snapshot(State())
    earlier = {"server": server, "reactor": {"iterations": 100, "events": 50, "poll_time_s": 1.0,
                                             "callback_time_s": 9.0}}
    now = {"server": server, "reactor": {"iterations": 110, "events": 70, "poll_time_s": 1.9,
                                         "callback_time_s": 9.1}}
    assert "loop 10 polls, 2.00 events/poll, 10% busy" in summary_line(now, earlier)
    assert "loop 110 polls, 0.64 events/poll, 83% busy" in summary_line(now)


def test_nothing_is_installed_on_the_loop_unless_asked(serve, tmp_path):
    plain = serve(text_app())
    assert type(plain.server.loop._selector).__module__ == "selectors"  # the real selector, unwrapped
    assert type(plain.server.loop._ready) is collections.deque
    assert plain.server.observer.snapshot().keys() == {"server"}
    traced = serve(text_app(), stats_port=0, trace_reactor=str(tmp_path / "t.jsonl"))
    assert type(traced.server.loop._selector).__module__ == "treadle.reactor.introspect"
    assert type(traced.server.loop._ready) is not collections.deque


def test_a_silent_client_cannot_hold_the_stats_endpoint_or_shutdown(serve):
    srv = serve(text_app(), stats_port=0)
    host, port = srv.server.observer.endpoint.address
    with socket.create_connection((host, port)):
        started = time.monotonic()
        srv.stop()
        assert time.monotonic() - started < 5


def test_several_workers_share_one_stats_port_but_not_a_trace_file():
    with pytest.raises(ValueError, match="stderr"):
        Config("app:app", workers=2, trace_reactor="trace.jsonl")
    config = Config("app:app", workers=2, stats_port=9100, trace_reactor="-")  # the supervisor serves the port
    assert (config.stats_port, config.trace_reactor) == (9100, "-")
