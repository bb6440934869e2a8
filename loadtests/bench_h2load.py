"""Run h2load (nghttp2-client) against a server over HTTP/2 with prior knowledge, and read
requests/s, p99 latency and errors: the HTTP/2 counterpart of bench_wrk.py.

h2load prints no percentiles, so its per-request log (``--log-file``: start time, status,
duration in microseconds) gives the p99.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from loadtests.bench_wrk import Result


def h2load_missing() -> str | None:
    if shutil.which("h2load") is None:
        return "h2load is not installed: apt-get install -y nghttp2-client"
    return None


def run_h2load(port: int, path: str, seconds: int, connections: int, streams: int, core: str) -> Result:
    """``connections`` HTTP/2 connections with ``streams`` concurrent streams each, for ``seconds``."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.log"
        argv = ["taskset", "-c", core, "h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{seconds}"]
        argv += ["--warm-up-time=0", f"--log-file={log}", f"http://127.0.0.1:{port}{path}"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
        durations = sorted(int(line.split()[2]) for line in log.read_text().splitlines() if line.strip())
    rps = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    requests = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored", out)
    codes = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if rps is None or requests is None or codes is None or not durations:
        raise RuntimeError(f"unexpected h2load output: {out[-400:]!r}")
    p99_us = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    errors = sum(int(n) for n in requests.groups()) + sum(int(n) for n in codes.groups())
    return Result(float(rps.group(1)), p99_us / 1000.0, errors)
