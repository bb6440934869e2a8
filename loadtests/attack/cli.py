"""``python -m loadtests.attack``: run the attacks, print the table (loadtests/attack/__init__.py).

Exit status: 0 when every defence held; 1 when one did not (the table says which); 2 usage.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from loadtests.attack import faults, fd_flood, h2_attacks, http_attacks, processes, soak, stats_attack, ws_attacks
from loadtests.attack.report import Attack, flags_used, table
from loadtests.attack.run import run_all


def all_attacks(soak_requests: int | None = None) -> list[Attack]:
    return [
        *http_attacks.ATTACKS,
        *fd_flood.ATTACKS,
        *ws_attacks.ATTACKS,
        *h2_attacks.ATTACKS,
        *stats_attack.ATTACKS,
        *faults.ATTACKS,
        *processes.ATTACKS,
        soak.attack(soak_requests),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.attack",
        description="Attack a Treadle server on 127.0.0.1 and tabulate how it held.",
    )
    parser.add_argument("--quick", action="store_true", help="run every attack small (seconds, not minutes)")
    parser.add_argument("--only", action="append", default=[], metavar="WORD",
                        help="run the attacks whose name contains WORD (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the attacks and exit")
    parser.add_argument("--url", help="attack this server (http://127.0.0.1:PORT) instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's pid, to read its memory and fds")
    parser.add_argument("--soak-requests", type=int, default=None, metavar="N",
                        help=f"requests in the soak (default {soak.FULL_REQUESTS:,}; --quick: {soak.QUICK_REQUESTS:,})")
    parser.add_argument("--out", type=Path, help="write the table (Markdown) and the flags used to this file")
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this directory")
    return parser


def select(attacks: Sequence[Attack], words: Sequence[str]) -> list[Attack]:
    if not words:
        return list(attacks)
    chosen = [a for a in attacks if any(w.lower() in f"{a.family}: {a.name}".lower() for w in words)]
    if not chosen:
        raise SystemExit(f"no attack matches {', '.join(words)}: see --list")
    return chosen


def _raise_fd_limit() -> None:
    """A thousand attackers need a thousand descriptors here too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    attacks = select(all_attacks(args.soak_requests), args.only)
    if args.list:
        for attack in attacks:
            print(f"{attack.family}: {attack.name}")
        return
    url = None
    if args.url:
        parts = urlsplit(args.url)
        if parts.hostname is None or parts.port is None:
            raise SystemExit("--url needs a host and a port: http://127.0.0.1:8000")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"attacks are aimed at loopback only (127.0.0.1), not at {parts.hostname}")
        url = (parts.hostname, parts.port, args.pid)
        skipped = [a for a in attacks if a.needs_url]
        attacks = [a for a in attacks if not a.needs_url]
        for attack in skipped:
            print(f"skipped with --url (it starts its own server): {attack.family}: {attack.name}")
    _raise_fd_limit()
    log_dir = args.logs or Path(tempfile.mkdtemp(prefix="treadle-attack-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = run_all(attacks, args.quick, log_dir, url, progress=lambda line: print(line, file=sys.stderr, flush=True))
    text = table(rows)
    print(text)
    print()
    print(flags_used(rows))
    if args.out:
        args.out.write_text(text + "\n\nServer flags per attack:\n\n" + flags_used(rows) + "\n")
    print(f"\nserver logs: {log_dir}", file=sys.stderr)
    sys.exit(0 if all(row.outcome.held for row in rows) else 1)
