"""Run wrk against a server and read requests/s, p99 latency and errors from its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk_missing() -> str | None:
    if shutil.which("wrk") is None:
        return "wrk is not installed: apt-get install -y wrk"
    if shutil.which("taskset") is None:
        return "taskset is not installed: apt-get install -y util-linux"
    return None


class Result:
    def __init__(self, rps: float, p99_ms: float, errors: int) -> None:
        self.rps = rps
        self.p99_ms = p99_ms
        self.errors = errors
        self.cpu_us = 0.0  # the server's CPU time per request, filled in by the caller


def run_wrk(port: int, path: str, seconds: int, connections: int, core: str, script: str | None) -> Result:
    argv = ["taskset", "-c", core, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", str(LUA / script)]
    argv.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if rps is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output: {out[-400:]!r}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    return Result(float(rps.group(1)), float(p99.group(1)) * _UNITS_MS[p99.group(2)], errors)
