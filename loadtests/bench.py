"""Benchmark Treadle against the servers users would pick instead, in one run.

Each server is pinned to one core (``taskset -c 1``); wrk drives one at a time from the
other core (``taskset -c 0``) over keep-alive connections: a warm-up, then several rounds
taken in turns across the servers, of which the median requests/s is reported with that
round's p99 latency and the ratio to Treadle. The idle scenario opens N keep-alive
connections to one server at a time and reports RSS per connection.

Usage (from the repository root)::

    pip install '.[bench]'          # the anchor servers; apt-get install -y wrk
    python loadtests/bench.py                        # everything, default rounds
    python loadtests/bench.py --duration 3 --rounds 3 --scenarios plaintext-asgi,pipelined
    python loadtests/bench.py --idle-connections 10000

Servers or scenarios that cannot run are reported as "n/a" with the reason. Every server
started is stopped at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make "loadtests" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests import bench_idle as idle  # noqa: E402
from loadtests.bench_h2load import h2load_missing, run_h2load  # noqa: E402
from loadtests.bench_report import write_chart, write_table  # noqa: E402
from loadtests.bench_servers import APPS, ROOT, Running, ServerSpec, all_servers, free_port  # noqa: E402
from loadtests.bench_wrk import run_wrk, wrk_missing  # noqa: E402

SERVER_CORE, CLIENT_CORE = "1", "0"

# name: (app, path, wrk script, connections, streams); app "any" means ASGI if the server speaks
# it, else WSGI. streams 0: HTTP/1.1 with wrk; N: HTTP/2 (prior knowledge) with h2load, N
# concurrent streams on each connection.
SCENARIOS: dict[str, tuple[str, str, str | None, int, int]] = {
    "plaintext-asgi": ("asgi", "/", None, 64, 0),
    "plaintext-wsgi": ("wsgi", "/", None, 64, 0),
    "fastapi-json": ("fastapi", "/json", None, 64, 0),
    "flask-json": ("flask", "/json", None, 64, 0),
    "response-1mib": ("any", "/big", None, 8, 0),
    "upload-1mib": ("any", "/upload", "upload.lua", 8, 0),
    "pipelined-16": ("any", "/", "pipeline.lua", 16, 0),
    "h2-1x100": ("asgi", "/", None, 1, 100),
    "h2-32x10": ("asgi", "/", None, 32, 10),
    "idle-memory": ("any", "/", None, 0, 0),
}


def _app_for(spec: ServerSpec, app: str) -> tuple[str, str] | str:
    """(app reference, interface), or the reason the server cannot run it."""
    if spec.unavailable:
        return spec.unavailable
    if app == "any":
        app = "asgi" if "asgi" in spec.interfaces else "wsgi"
    ref, interface = APPS[app]
    if interface not in spec.interfaces:
        return spec.notes.get(interface, f"no {interface.upper()} support")
    return ref, interface


def _start(spec: ServerSpec, scenario: str, logs: Path, row: dict[str, Any]) -> Running | None:
    """Start ``spec`` for ``scenario``, or record in ``row`` why it cannot run."""
    app, streams = SCENARIOS[scenario][0], SCENARIOS[scenario][4]
    target = _app_for(spec, app)
    if isinstance(target, str):
        row["na"] = target
        return None
    command = spec.h2_command if streams else spec.command
    if command is None:
        row["na"] = "no HTTP/2 (prior knowledge) support"
        return None
    ref, interface = target
    row["interface"] = interface
    port = free_port()
    argv = command(ref, interface, port, scenario == "idle-memory")
    running = Running(argv, port, SERVER_CORE, logs / f"{spec.name}-{scenario}.log")
    problem = running.wait_ready(http2=bool(streams))
    if problem:
        row["na"] = f"did not start: {problem}"
        running.stop()
        return None
    return running


def run_idle(spec: ServerSpec, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """One server alone: RSS per idle keep-alive connection."""
    row: dict[str, Any] = {"scenario": "idle-memory", "server": spec.name}
    running = _start(spec, "idle-memory", logs, row)
    if running is None:
        return row
    try:
        per_conn, alive, note = idle.measure(running, running.port, args.idle_connections)
        if running.proc.poll() is not None:
            row["na"] = f"crashed holding idle connections: {running.tail()}"
        elif not alive:
            row["na"] = "no connection stayed open"
        else:
            row.update(kib_per_conn=round(per_conn, 2), connections=alive)
            if note:
                row["note"] = note
    finally:
        running.stop()
    return row


def run_load(servers: list[ServerSpec], scenario: str, args: argparse.Namespace, logs: Path) -> list[dict[str, Any]]:
    """All servers of a scenario started at once (idle ones cost no CPU), then measured in
    turns — round 1 of each, round 2 of each, ... — so a burst of load from elsewhere on a
    shared machine hits every server alike instead of one server's whole measurement."""
    _, path, script, connections, streams = SCENARIOS[scenario]
    rows = [{"scenario": scenario, "server": spec.name} for spec in servers]
    live: list[tuple[dict[str, Any], Running, list[Any]]] = []
    try:
        for spec, row in zip(servers, rows):
            running = _start(spec, scenario, logs, row)
            if running is not None:
                live.append((row, running, []))
        for turn in range(args.rounds + 1):  # turn 0 is the warm-up
            for row, running, rounds in live:
                if "na" in row:
                    continue
                try:
                    seconds = args.warmup if turn == 0 else args.duration
                    cpu_before = running.cpu_seconds()
                    if streams:
                        result = run_h2load(running.port, path, seconds, connections, streams, CLIENT_CORE)
                    else:
                        result = run_wrk(running.port, path, seconds, connections, CLIENT_CORE, script)
                    cpu = running.cpu_seconds() - cpu_before
                except Exception as exc:  # one failing server must not end the whole run
                    row["na"] = f"failed: {exc}"
                    continue
                if turn:
                    # CPU time per request moves far less than req/s when something else
                    # takes turns on the server's core: the steadier figure for tuning.
                    result.cpu_us = cpu * 1e6 / max(1.0, result.rps * seconds)
                    rounds.append(result)
        for row, running, rounds in live:
            if "na" in row:
                continue
            rounds.sort(key=lambda r: r.rps)
            median = rounds[len(rounds) // 2]
            row.update(
                rps=round(statistics.median(r.rps for r in rounds), 1),
                # wrk times a pipelined batch, not each request in it: no meaningful p99 there.
                p99_ms=0.0 if script == "pipeline.lua" else round(median.p99_ms, 2),
                rounds=[round(r.rps, 1) for r in rounds],
                cpu_us=round(statistics.median(r.cpu_us for r in rounds), 1),
            )
            errors = sum(r.errors for r in rounds)
            if errors:
                row["note"] = f"{errors} socket errors or non-2xx responses"
            if running.proc.poll() is not None:
                row["note"] = f"server exited during the run: {running.tail()}"
    finally:
        for _, running, _ in live:
            running.stop()
    return rows


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so every server is still stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark Treadle against other Python servers.")
    parser.add_argument("--servers", help="comma-separated subset (default: all)")
    parser.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before the rounds")
    parser.add_argument("--idle-connections", type=int, default=2000, help="for idle-memory (try 10000)")
    parser.add_argument("--out", default=str(ROOT / "loadtests" / "results"), help="directory for json, png, logs")
    args = parser.parse_args(argv)

    missing = wrk_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    idle.raise_fd_limit(args.idle_connections * 2 + 1024)
    out = Path(args.out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    servers, baseline = all_servers()
    if args.servers:
        wanted = args.servers.split(",")
        servers = [s for s in servers if s.name in wanted]
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}")
    if any(SCENARIOS[s][4] for s in scenarios) and h2load_missing():
        print(f"{h2load_missing()}: skipping the HTTP/2 scenarios", file=sys.stderr)
        scenarios = [s for s in scenarios if not SCENARIOS[s][4]]

    signal.signal(signal.SIGTERM, _interrupt)
    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        for scenario in scenarios:
            if scenario == "idle-memory":
                done = [run_idle(spec, args, logs) for spec in servers]
            else:
                done = run_load(servers, scenario, args, logs)
            for row in done:
                print(json.dumps(row), flush=True)
            rows += done
    except KeyboardInterrupt:
        print("interrupted: stopping servers", file=sys.stderr)
    finally:
        Running.stop_all()
    meta = {
        "command": " ".join(["python", "loadtests/bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "python": sys.version.split()[0],
        "baseline": baseline,
    }
    (out / "latest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(write_table(rows, out / "latest.md", baseline))
    print(write_chart(rows, out / "latest.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
