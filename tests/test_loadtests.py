"""The load-test command end to end: a short run of every scenario, and its failures.

Each run is the real command in a subprocess (server, Locust, reports); seconds each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_until

# Only look for Locust: importing it would gevent-monkey-patch this whole test process.
if sys.version_info < (3, 10):
    pytest.skip("the load tests need Locust 2.37+ (--json-file), which needs Python 3.10+", allow_module_level=True)
if importlib.util.find_spec("locust") is None:
    pytest.skip("locust is not installed: pip install '.[loadtest]'", allow_module_level=True)
psutil = pytest.importorskip("psutil")  # a dependency of locust

from loadtests.runner import EXIT_SKIPPED, parse_duration  # noqa: E402
from loadtests.scenarios import SCENARIOS  # noqa: E402
from loadtests.verdict import judge  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def loadtest(out: Path, scenario: str, *extra: str, run_time: str = "3s") -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "loadtests", "run", scenario, "--users", "5", "--spawn-rate", "5",
            "--run-time", run_time, "--out", str(out), *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def assert_nothing_left(out: Path) -> None:
    run = json.loads((out / "run.json").read_text())
    for pid in (run["server_pid"], run["locust_pid"]):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", run["port"]), timeout=1).close()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_scenario_passes_a_short_run(scenario, tmp_path):
    result = loadtest(tmp_path, scenario)
    if result.returncode == EXIT_SKIPPED:
        assert result.stdout.startswith(f"SKIPPED: scenario {scenario}: ")
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS: "), result.stdout
    assert result.stdout.splitlines()[1].startswith("server's view: ")
    assert (tmp_path / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert judge(tmp_path / "locust.json", tmp_path / "locust_failures.csv", 10_000).ok
    server_stats = json.loads((tmp_path / "server-stats.json").read_text())
    assert server_stats["server"]["requests_total"] > 0
    assert server_stats["reactor"]["iterations"] > 0
    assert_nothing_left(tmp_path)


def test_failing_requests_fail_the_command(tmp_path):
    result = loadtest(tmp_path, "plaintext", "--app", "loadtests.example_apps:always_500")
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith("FAIL: ") and "requests failed" in line and "500" in line, line
    assert_nothing_left(tmp_path)


def test_a_p95_over_budget_fails_the_command(tmp_path):
    # Every request of the mixed scenario waits 20 ms in the app, so a 10 ms budget cannot be
    # met. (A 0 ms budget on plaintext could: Locust rounds fast responses to 0 ms.)
    result = loadtest(tmp_path, "mixed", "--p95-budget-ms", "10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: p95 latency" in result.stdout and "over the budget of 10 ms" in result.stdout, result.stdout
    assert_nothing_left(tmp_path)


def test_a_server_that_cannot_start_fails_the_command(tmp_path):
    result = loadtest(tmp_path, "plaintext", "--app", "loadtests.example_apps:no_such_app")
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL: the server exited with code 1 before accepting"), result.stdout


def _kill_children_of(out: Path) -> None:
    """End the server and locust a runner started (each leads its own process group)."""
    try:
        run = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return
    for pid in (run.get("server_pid"), run.get("locust_pid")):
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass  # already gone


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupting_the_runner_stops_server_and_locust(tmp_path):
    argv = [sys.executable, "-m", "loadtests", "run", "plaintext", "--users", "2", "--run-time", "60s",
            "--out", str(tmp_path)]
    # As a terminal starts it: SIGINT at its default, which Python turns into KeyboardInterrupt.
    # (Under a shell's background job, `cmd &`, SIGINT is ignored and the child inherits that.)
    runner = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=_default_sigint)
    try:
        wait_until(lambda: (tmp_path / "run.json").exists(), timeout=30)
        os.kill(runner.pid, signal.SIGINT)
        _, err = runner.communicate(timeout=40)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
            _kill_children_of(tmp_path)  # the runner, killed, could not stop them
    assert runner.returncode == 130
    assert "INTERRUPTED" in err
    assert_nothing_left(tmp_path)


def test_parse_duration():
    assert parse_duration("10s") == 10 and parse_duration("2m") == 120 and parse_duration("1h30m") == 5400
    assert parse_duration("45") == 45
    with pytest.raises(ValueError):
        parse_duration("soon")


def write_final(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps([{"num_requests": sum(e["response_times"].values()), **e} for e in entries]))
    return path


def test_verdict_reads_locust_final_json(tmp_path):
    fast = {"num_failures": 0, "response_times": {"1": 90, "2": 5}}
    slow = {"num_failures": 0, "response_times": {"40": 4, "300": 1}}
    final = write_final(tmp_path / "locust.json", fast, slow)
    # 100 requests: the 95th is the last of the 2 ms ones; the 96th..100th are slower.
    assert judge(final, tmp_path / "none.csv", 2).line == "PASS: 100 requests, 0 failed, p95 2 ms within 2 ms"
    assert judge(final, tmp_path / "none.csv", 1).line.startswith("FAIL: p95 latency 2 ms is over the budget of 1 ms")
    broken = write_final(tmp_path / "broken.json", {"num_failures": 3, "response_times": {"1": 10}})
    line = judge(broken, tmp_path / "none.csv", 100).line
    assert line == "FAIL: 3 of 10 requests failed, first: (in the last second: see the report)"
    assert judge(write_final(tmp_path / "empty.json"), tmp_path / "none.csv", 100).line == "FAIL: no request completed"
    assert "is missing" in judge(tmp_path / "absent.json", tmp_path / "none.csv", 100).line
