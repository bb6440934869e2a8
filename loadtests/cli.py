"""``python -m loadtests run SCENARIO ...`` and ``python -m loadtests list``.

Exit codes: 0 passed; 1 a request failed, the p95 budget was exceeded, or the run itself
failed; 77 the scenario was skipped because this Treadle lacks a feature it needs; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from loadtests.runner import EXIT_SKIPPED, SERVER_STATS, Options, parse_duration, run
from loadtests.scenarios import SCENARIOS
from treadle.server.observe.observer import summary_line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description="Load-test Treadle with Locust.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the scenarios")
    r = commands.add_parser(
        "run",
        help="run one scenario end to end",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    r.add_argument("scenario", choices=sorted(SCENARIOS))
    r.add_argument("--users", type=_positive_int, default=10, help="simulated users")
    r.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    r.add_argument("--run-time", type=_duration, default="10s", help="how long to run (10s, 2m, ...)")
    r.add_argument("--p95-budget-ms", type=float, default=200.0, help="fail if p95 latency exceeds this")
    r.add_argument("--out", type=Path, default=Path("loadtest-results"), help="directory for reports")
    r.add_argument("--app", default=None, help="serve this app instead of the scenario's example app")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    return text


def _terminate(signum: int, frame: Any) -> None:
    # Turn SIGTERM into an exception so run()'s cleanup stops the server and Locust.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        for name, scenario in sorted(SCENARIOS.items()):
            reason = scenario.missing()
            print(f"{name:10} {scenario.description}" + (f"  [skipped: {reason}]" if reason else ""))
        return
    signal.signal(signal.SIGTERM, _terminate)
    options = Options(args.users, args.spawn_rate, args.run_time, args.p95_budget_ms, args.out, args.app)
    try:
        code, line = run(SCENARIOS[args.scenario], options)
    except KeyboardInterrupt:
        print("INTERRUPTED: server and locust stopped", file=sys.stderr)
        sys.exit(130)
    print(line + ("" if code == EXIT_SKIPPED else f"  (report: {args.out / 'report.html'})"))
    server_stats = args.out / SERVER_STATS
    if server_stats.exists():
        # The server's side of the story: its own latency excludes the client's, and its loop's
        # busy share tells whether the server or Locust was the bottleneck.
        print("server's view: " + summary_line(json.loads(server_stats.read_text())))
    sys.exit(code)
