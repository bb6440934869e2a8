"""Judge a finished run from Locust's final statistics: pass only with requests, no
failures, and the p95 latency within budget.

Locust's own exit code says only "there were failures"; the verdict also checks the
latency budget and that anything ran at all, and says in one line what was wrong.

Discussion — why the JSON and not the CSV. Locust rewrites ``*_stats.csv`` once a second
and its last write can miss the final second of the run (a 3 s run once reported 6883
requests in the CSV and 9351 in its final summary). ``--json-file`` is written from the
final statistics, so the verdict reads that, and computes the aggregated p95 itself from
the per-endpoint response-time histograms (milliseconds, rounded as Locust rounds them).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Verdict:
    ok: bool
    line: str


def judge(final_json: Path, failures_csv: Path, p95_budget_ms: float) -> Verdict:
    """Read Locust's ``--json-file`` output; ``failures_csv`` only to name the first failure."""
    if not final_json.exists():
        return Verdict(False, f"FAIL: locust wrote no statistics ({final_json} is missing)")
    entries = json.loads(final_json.read_text())
    requests = sum(e["num_requests"] for e in entries)
    failed = sum(e["num_failures"] for e in entries)
    if requests == 0:
        return Verdict(False, "FAIL: no request completed")
    if failed:
        return Verdict(False, f"FAIL: {failed} of {requests} requests failed, first: {_first_failure(failures_csv)}")
    p95 = percentile(entries, 0.95)
    if p95 > p95_budget_ms:
        return Verdict(False, f"FAIL: p95 latency {p95:g} ms is over the budget of {p95_budget_ms:g} ms "
                              f"({requests} requests)")
    return Verdict(True, f"PASS: {requests} requests, 0 failed, p95 {p95:g} ms within {p95_budget_ms:g} ms")


def percentile(entries: list[dict], fraction: float) -> float:
    """The response time (ms) under which ``fraction`` of all requests of all entries fell."""
    histogram: dict[float, int] = {}
    for entry in entries:
        for ms, count in entry["response_times"].items():
            histogram[float(ms)] = histogram.get(float(ms), 0) + count
    total = sum(histogram.values())
    rank = math.ceil(fraction * total)
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return ms
    return math.inf  # no samples


def _first_failure(failures_csv: Path) -> str:
    if failures_csv.exists():
        with failures_csv.open(newline="") as fh:
            for row in csv.DictReader(fh):
                return f"{row['Method']} {row['Name']}: {row['Error']} (x{row['Occurrences']})"
    return "(in the last second: see the report)"
