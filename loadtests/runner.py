"""Run one scenario end to end: server up, Locust headless, everything down, a verdict.

Outputs in ``out``: ``report.html`` (Locust's), ``locust.json`` (its final statistics, which
the verdict reads), ``locust_stats.csv`` and the other CSVs,
``server.log``, ``locust.log``, ``server-stats.json`` (the server's own counters, fetched
from its ``--stats-port`` before it stops) and ``run.json`` (what ran: options, ports,
process ids, and the verdict once there is one).
"""

from __future__ import annotations

import json
import re
import signal
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from loadtests.processes import Child, free_port, wait_for_port
from loadtests.scenarios import Scenario
from loadtests.verdict import judge

HOST = "127.0.0.1"  # load tests never leave this machine
START_TIMEOUT = 20.0
EXIT_SKIPPED = 77  # the automake/meson convention for "skipped", distinct from failure
SERVER_STATS = "server-stats.json"


@dataclass
class Options:
    users: int
    spawn_rate: float
    run_time: str  # Locust's syntax: 10s, 2m, 1h30m
    p95_budget_ms: float
    out: Path
    app: str | None = None  # run the scenario against another app


def run(scenario: Scenario, options: Options) -> tuple[int, str]:
    """Run ``scenario``; returns (exit code, one-line verdict)."""
    reason = scenario.missing()
    if reason is not None:
        return EXIT_SKIPPED, f"SKIPPED: scenario {scenario.name}: {reason}"
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in (SERVER_STATS, "run.json", "locust.json", "locust_failures.csv"):  # a reused --out must not mislead
        (out / stale).unlink(missing_ok=True)
    port, stats_port = free_port(HOST), free_port(HOST)
    server = Child(
        [
            sys.executable, "-m", "treadle", options.app or scenario.app,
            "--host", HOST, "--port", str(port), "--lifespan", "off", "--no-access-log",
            "--stats-port", str(stats_port), *scenario.server_args,
        ],
        out / "server.log",
        cwd=Path(__file__).resolve().parent.parent,  # so the example apps import
    )
    locust = None
    try:
        wait_for_port(server, HOST, port, START_TIMEOUT)
        locust = Child(
            [
                sys.executable, "-m", "locust", "-f", str(scenario.locustfile_path), "--headless",
                "--host", f"http://{HOST}:{port}", "--users", str(options.users),
                "--spawn-rate", str(options.spawn_rate), "--run-time", options.run_time,
                "--stop-timeout", "5", "--csv", str(out / "locust"), "--json-file", str(out / "locust"),
                "--html", str(out / "report.html"),
                "--only-summary", "--loglevel", "WARNING",
            ],
            out / "locust.log",
        )
        record = {
            "scenario": scenario.name, "app": options.app or scenario.app, "users": options.users,
            "spawn_rate": options.spawn_rate, "run_time": options.run_time,
            "p95_budget_ms": options.p95_budget_ms, "port": port, "stats_port": stats_port,
            "server_pid": server.pid, "locust_pid": locust.pid,
        }
        _write_json(out / "run.json", record)
        # Locust stops itself after --run-time; the margin covers its start-up and stop-timeout.
        if locust.wait(parse_duration(options.run_time) + 60) is None:
            code, line = 1, f"FAIL: locust did not finish in time (see {out / 'locust.log'})"
        elif server.exited() is not None:
            code, line = 1, f"FAIL: the server died during the run (exit code {server.exited()}): see {server.log}"
        else:
            _save_server_stats(stats_port, out / SERVER_STATS)
            verdict = judge(out / "locust.json", out / "locust_failures.csv", options.p95_budget_ms)
            code, line = (0 if verdict.ok else 1), verdict.line
        _write_json(out / "run.json", {**record, "exit_code": code, "verdict": line})
        return code, line
    except RuntimeError as exc:
        return 1, f"FAIL: {exc}"
    finally:
        if locust is not None:
            locust.stop(signal.SIGTERM, grace=10)
        server.stop(signal.SIGINT, grace=15)  # SIGINT: the server's graceful shutdown


def parse_duration(text: str) -> float:
    """Seconds in a Locust duration: ``90``, ``10s``, ``2m``, ``1h30m``."""
    if text.isdigit():
        return float(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not parts or not any(parts.groups()):
        raise ValueError(f"not a duration: {text!r} (try 10s, 2m, 1h30m)")
    hours, minutes, seconds = (int(g or 0) for g in parts.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


def _save_server_stats(port: int, path: Path) -> None:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/stats", timeout=5) as resp:
            _write_json(path, json.load(resp))
    except OSError:
        pass  # the stats endpoint did not answer: Locust's report stands alone


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
