"""Judge a finished run from Locust's CSV: pass only with requests, no failures, p95 in budget.

Locust's own exit code says only "there were failures"; the verdict also checks the
latency budget and that anything ran at all, and says in one line what was wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Verdict:
    ok: bool
    line: str


def judge(stats_csv: Path, failures_csv: Path, p95_budget_ms: float) -> Verdict:
    """Read ``<prefix>_stats.csv`` (its Aggregated row) and ``<prefix>_failures.csv``."""
    if not stats_csv.exists():
        return Verdict(False, f"FAIL: locust wrote no statistics ({stats_csv} is missing)")
    with stats_csv.open(newline="") as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    total = rows.get("Aggregated")
    if total is None or int(total["Request Count"]) == 0:
        return Verdict(False, "FAIL: no request completed")
    requests = int(total["Request Count"])
    failed = int(total["Failure Count"])
    p95 = float(total["95%"]) if total["95%"] not in ("", "N/A") else float("inf")
    if failed:
        return Verdict(False, f"FAIL: {failed} of {requests} requests failed, first: {_first_failure(failures_csv)}")
    if p95 > p95_budget_ms:
        return Verdict(False, f"FAIL: p95 latency {p95:g} ms is over the budget of {p95_budget_ms:g} ms "
                              f"({requests} requests)")
    return Verdict(True, f"PASS: {requests} requests, 0 failed, p95 {p95:g} ms within {p95_budget_ms:g} ms")


def _first_failure(failures_csv: Path) -> str:
    if not failures_csv.exists():
        return "(no failures file)"
    with failures_csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            return f"{row['Method']} {row['Name']}: {row['Error']} (x{row['Occurrences']})"
    return "(none recorded)"
