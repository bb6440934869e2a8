"""One stats view for all workers: with --workers, the supervisor serves /stats, /metrics and the
dashboard on the one --stats-port, summed over its workers and per worker, and logs one
--stats-interval line for all of them; totals survive workers that retire or are killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import httpx
from conftest import wait_until
from prod_support import READY, Proc, get_json, ready_pids
from test_stats import parse_prometheus


def start(procs: list[Proc], workers: int, *args: str) -> tuple[Proc, int, str, set[int]]:
    """A supervisor with a stats port; returns it, the app's port, the stats base URL, the workers' pids."""
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--stats-port", "0", "--workers", str(workers), *args)
    procs.append(proc)
    stats = int(proc.wait_for(r"Stats of all workers on http://127\.0\.0\.1:(\d+)/").group(1))
    port = proc.port()
    return proc, port, f"http://127.0.0.1:{stats}", set(ready_pids(proc, workers))


def hit(port: int, count: int) -> None:
    for _ in range(count):  # a new connection each time: the workers compete for each accept()
        assert httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}, timeout=5).status_code == 200


def settled(base: str, total: int) -> dict:
    """/stats once every worker has reported ``total`` requests in all."""
    return wait_until(lambda: (s := get_json(base + "/stats"))["server"]["requests_total"] == total and s, timeout=10)


def test_the_supervisor_serves_the_sum_and_each_worker(procs):
    proc, port, base, pids = start(procs, 2)
    hit(port, 40)
    snapshot = settled(base, 40)
    server = snapshot["server"]
    assert server["responses_by_class"]["2xx"] == 40 and server["latency_count"] == 40
    assert 0 < server["latency_ms"]["p50"] <= server["latency_ms"]["p99"]
    workers = snapshot["workers"]
    assert {w["pid"] for w in workers} == pids and sorted(w["worker"] for w in workers) == [1, 2]
    assert sum(w["server"]["requests_total"] for w in workers) == 40
    assert all("latency_buckets" not in w and w["report_age_s"] < 5 for w in workers)
    assert snapshot["supervisor"] == {**snapshot["supervisor"], "pid": proc.pid, "workers": 2, "workers_alive": 2,
                                      "worker_restarts": 0}
    assert snapshot["reactor"]["iterations"] == sum(w["reactor"]["iterations"] for w in workers)
    assert snapshot["reactor"]["lag_max_ms"] == max(w["reactor"]["lag_max_ms"] for w in workers)

    samples = parse_prometheus(httpx.get(base + "/metrics", timeout=5).text)
    assert samples["treadle_requests_total"] == 40 and samples["treadle_supervisor_workers"] == 2
    assert samples["treadle_supervisor_worker_restarts_total"] == 0
    per_worker = [samples[f'treadle_worker_requests_total{{worker="{n}"}}'] for n in (1, 2)]
    assert sum(per_worker) == 40
    assert samples['treadle_worker_responses_total{worker="1",class="2xx"}'] == per_worker[0]
    assert httpx.get(base + "/", timeout=5).headers["content-type"] == "text/html; charset=utf-8"
    # The workers bound no stats port of their own.
    assert "Stats on" not in proc.output()


def test_totals_survive_a_killed_worker(procs):
    proc, port, base, pids = start(procs, 2)
    hit(port, 30)
    before = settled(base, 30)
    victim = min(pids)
    slot = next(w["worker"] for w in before["workers"] if w["pid"] == victim)
    os.kill(victim, signal.SIGKILL)
    new = int(proc.wait_for(READY, after=proc.seen.index(
        proc.wait_for(rf"Worker \[{victim}\] exited \(killed by SIGKILL\)").string)).group(1))
    after = wait_until(lambda: (s := get_json(base + "/stats"))["workers"][-1].get("server") and
                       all("server" in w for w in s["workers"]) and s, timeout=10)
    assert after["server"]["requests_total"] == 30  # the dead worker's requests are still counted
    assert after["server"]["responses_by_class"]["2xx"] == 30
    assert after["supervisor"]["worker_restarts"] == 1
    assert next(w["worker"] for w in after["workers"] if w["pid"] == new) == slot  # it took the free slot
    hit(port, 5)
    assert settled(base, 35)["server"]["latency_count"] == 35


def test_retired_workers_lose_no_request(procs):
    # Each retiring worker sends a last report as it exits: the totals are exact.
    proc, port, base, _ = start(procs, 1, "--limit-max-requests", "5")
    hit(port, 12)
    snapshot = settled(base, 12)
    assert snapshot["server"]["responses_total"] == 12
    assert proc.count(r"Served 5 requests") == 2


def test_one_summary_line_for_all_workers(procs):
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--workers", "2", "--stats-interval", "0.3",
                        "--log-format", "json")
    procs.append(proc)
    port = int(json.loads(proc.wait_for(r"running on http").string)["message"].rsplit(":", 1)[1].split()[0])
    hit(port, 3)
    wait_until(lambda: proc.count(r'"logger": "treadle.stats".*"message": "2 workers \| .*3 requests') >= 1,
               timeout=10)
    lines = [json.loads(line) for line in proc.output().splitlines()]
    stats = [line for line in lines if line["logger"] == "treadle.stats"]
    assert {line["pid"] for line in stats} == {proc.pid}  # the supervisor's, not each worker's
    reported = [line for line in stats if "3 requests" in line["message"]]  # once the workers had reported
    assert reported and all("lag" in line["message"] for line in reported)


def test_the_supervisors_endpoint_withstands_bad_clients(procs):
    proc, port, base, _ = start(procs, 2)
    host, stats_port = "127.0.0.1", int(base.rsplit(":", 1)[1])
    silent = [socket.create_connection((host, stats_port)) for _ in range(5)]
    try:
        started = time.monotonic()
        assert get_json(base + "/stats")["supervisor"]["workers_alive"] == 2  # not held up by them
        assert time.monotonic() - started < 1.5
        for sock in silent:  # each dropped once its 2 s are up
            sock.settimeout(5)
            assert sock.recv(100) == b""
        with socket.create_connection((host, stats_port)) as big:
            big.sendall(b"GET /stats HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n")
            assert big.recv(100).startswith(b"HTTP/1.1 431 ")
        response = httpx.post(base + "/stats", timeout=5)
        assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")
        assert httpx.get(base + "/nothing", timeout=5).status_code == 404
        with socket.create_connection((host, stats_port)) as garbage:
            garbage.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            assert garbage.recv(100).startswith(b"HTTP/1.1 400 ")
    finally:
        for sock in silent:
            sock.close()
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200  # the workers never noticed
    proc.signal(signal.SIGTERM)
    assert proc.finish() == 0
