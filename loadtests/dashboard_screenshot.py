"""The stats dashboard's picture for the docs: ``python -m loadtests.dashboard_screenshot OUT.png``.

Starts Treadle with two workers on the ``mixed`` example (an async route waiting on the loop,
a WSGI route blocking pool threads), puts it under load with wrk for ``--seconds`` (on
127.0.0.1, bounded), opens the supervisor's dashboard in headless Chromium, and takes the
screenshot while the load still runs, so that every chart has a history. Needs wrk and
Chromium (Debian: ``apt-get install wrk chromium``). Everything it starts is stopped, also on
an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtests.chromium import Browser, find_chromium
from loadtests.processes import Child, free_port, wait_for_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the PNG")
    parser.add_argument("--seconds", type=int, default=40, help="how long the load runs")
    args = parser.parse_args()
    chromium, wrk = find_chromium(), shutil.which("wrk")
    if chromium is None or wrk is None:
        sys.exit("needs chromium and wrk on PATH")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        port = free_port()
        server = Child(
            [sys.executable, "-m", "treadle", "loadtests.example_apps:slow_async", "--mount",
             "/sync=loadtests.example_apps:slow_wsgi", "--port", str(port), "--workers", "2", "--threads", "4",
             "--stats-port", "0", "--no-access-log"],
            work / "server.log",
        )
        loads: list[subprocess.Popen] = []
        browser = None
        try:
            wait_for_port(server, "127.0.0.1", port, timeout=20)
            stats = _stats_port(server, deadline=time.monotonic() + 10)
            # A new connection for each request, so that both workers get a share: keep-alive
            # connections opened at once are all accepted by whichever worker wakes first.
            for path, connections in (("/slow?ms=5", 30), ("/sync/slow?ms=15", 12)):
                loads.append(subprocess.Popen(
                    [wrk, "-t1", f"-c{connections}", f"-d{args.seconds}s", "-H", "Connection: close",
                     f"http://127.0.0.1:{port}{path}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            browser = Browser(chromium, work / "profile", width=1280, height=980)
            browser.navigate(f"http://127.0.0.1:{stats}/")
            time.sleep(max(1, args.seconds - 5))  # the charts fill up while the load runs
            browser.screenshot(args.out)
            print(f"wrote {args.out}")
        finally:
            if browser is not None:
                browser.close()
            for load in loads:
                load.kill()
                load.wait()
            server.stop()


def _stats_port(server: Child, deadline: float) -> int:
    while time.monotonic() < deadline:
        match = re.search(r"Stats of all workers on http://[\d.]+:(\d+)/", server.log.read_text())
        if match:
            return int(match.group(1))
        time.sleep(0.1)
    raise RuntimeError(f"no stats port in the log:\n{server.tail()}")


if __name__ == "__main__":
    main()
