"""Worker life-cycle knobs: --timeout-worker-healthcheck replaces a worker whose loop is stuck,
--timeout-worker-startup kills one that never becomes ready (a first start fails; a reload is
abandoned, the old workers serving on), and --limit-max-requests-jitter draws each worker's
own limit. Real supervisors in their own process groups, on 127.0.0.1."""

from __future__ import annotations

import re
import signal
import sys
import threading
import time

import httpx
import pytest
from prod_support import Proc, get_json, ready_pids


def test_a_worker_whose_loop_is_stuck_is_replaced(procs):
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--workers", "2", "--timeout-worker-healthcheck", "1")
    procs.append(proc)
    port = proc.port()
    pids = set(ready_pids(proc, 2))
    stuck = threading.Thread(
        target=lambda: pytest.raises(httpx.HTTPError, httpx.get, f"http://127.0.0.1:{port}/?block=30", timeout=20)
    )
    stuck.start()
    blocked = int(proc.wait_for(r"blocking (\d+)").group(1))
    started = time.monotonic()
    proc.wait_for(rf"Worker \[{blocked}\] has not answered for 1 s \(--timeout-worker-healthcheck\); replacing it\.")
    assert time.monotonic() - started < 5
    mark = len(proc.seen)
    (new,) = ready_pids(proc, 1, after=mark)
    proc.wait_for(rf"Worker \[{blocked}\] stopped \(killed by SIGABRT\)")
    assert "Fatal Python error: Aborted" in proc.output()  # faulthandler's dump, as it died
    if sys.implementation.name == "cpython":  # PyPy's shows the main thread only, not the loop's
        assert re.search(r'File ".*prod_apps\.py", line \d+ in info', proc.output())  # where it was stuck
    serving = pids - {blocked} | {new}
    seen = {get_json(f"http://127.0.0.1:{port}/", headers={"Connection": "close"})["pid"] for _ in range(20)}
    assert seen <= serving and new in seen or len(seen) == 1
    stuck.join(20)
    assert "has not answered" not in "\n".join(line for line in proc.seen if str(blocked) not in line)
    proc.signal(signal.SIGTERM)
    assert proc.finish() == 0


def test_a_busy_but_healthy_worker_is_left_alone(procs):
    # Requests that take long, but on a loop that keeps running, are no reason to kill anyone.
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--workers", "2", "--timeout-worker-healthcheck", "0.5")
    procs.append(proc)
    port = proc.port()
    pids = ready_pids(proc, 2)
    assert get_json(f"http://127.0.0.1:{port}/?sleep=2")["pid"] in pids
    assert "has not answered" not in proc.output()


def test_a_worker_that_does_not_start_in_time_fails_the_start(procs):
    proc = Proc.treadle(
        "prod_apps:info", "--port", "0", "--workers", "2", "--timeout-worker-startup", "1",
        env={"TEST_STARTUP_DELAY": "30"},
    )
    procs.append(proc)
    started = time.monotonic()
    assert proc.finish(20) == 1
    assert time.monotonic() - started < 10
    output = proc.output()
    assert len(re.findall(r"did not start within 1 s \(--timeout-worker-startup\); killing it", output)) == 2
    assert "failed to start (killed by SIGABRT)" in output


def test_a_reload_whose_workers_hang_is_abandoned(procs, tmp_path):
    hold = tmp_path / "hold"
    proc = Proc.treadle(
        "prod_apps:info", "--port", "0", "--workers", "2", "--timeout-worker-startup", "1",
        env={"TEST_STARTUP_HOLD": str(hold)},
    )
    procs.append(proc)
    port = proc.port()
    old = set(ready_pids(proc, 2))
    hold.touch()  # the next workers' lifespan startup hangs
    mark = len(proc.seen)
    proc.signal(signal.SIGHUP)
    proc.wait_for(r"did not start within 1 s", after=mark)
    proc.wait_for(r"Reload abandoned: the old workers keep serving\.", after=mark)
    for _ in range(5):
        assert get_json(f"http://127.0.0.1:{port}/")["pid"] in old
    hold.unlink()
    mark = len(proc.seen)
    proc.signal(signal.SIGHUP)  # the next reload, unhindered, completes
    proc.wait_for(r"Reload complete: 2 new worker\(s\) serving", after=mark, timeout=20)
    proc.signal(signal.SIGTERM)
    assert proc.finish() == 0


def test_each_worker_draws_its_own_jitter(procs):
    proc = Proc.treadle(
        "prod_apps:info", "--port", "0", "--workers", "4", "--limit-max-requests", "10",
        "--limit-max-requests-jitter", "1000",
    )
    procs.append(proc)
    proc.port()
    ready_pids(proc, 4)
    limits = [int(n) for n in re.findall(r"Started worker \[\d+\] \(retires after (\d+) requests\)", proc.output())]
    assert len(limits) == 4 and all(10 <= n <= 1010 for n in limits)
    assert len(set(limits)) > 1  # four equal draws out of 1001: about one chance in 10^9


def test_a_jittered_worker_retires_at_its_own_limit(procs):
    proc = Proc.treadle(
        "prod_apps:info", "--port", "0", "--limit-max-requests", "2", "--limit-max-requests-jitter", "3",
    )
    procs.append(proc)
    port = proc.port()
    (first,) = ready_pids(proc, 1)
    limit = int(proc.wait_for(rf"Started worker \[{first}\] \(retires after (\d+) requests\)").group(1))
    served = 0
    while get_json(f"http://127.0.0.1:{port}/", headers={"Connection": "close"})["pid"] == first:
        served += 1
        assert served <= limit
    assert served == limit
    proc.wait_for(rf"Served {limit} requests \(--limit-max-requests\)")
