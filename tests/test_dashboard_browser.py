"""The stats dashboard (GET / on the stats port) in a real browser: headless Chromium loads it
against a server under load, and what the page shows must be what /stats says.

Two checks, so that a failure says which half is wrong: the text on the page is the snapshot
the page last drew (``window.treadle.last``), correctly formatted; and that snapshot is what
the server's /stats reports, fetched independently once the load has stopped.

Skipped without Chromium (Debian: ``apt-get install chromium``). With the environment variable
``TREADLE_DASHBOARD_SCREENSHOT=PATH`` the first test also saves its screenshot there (that is
how docs/observability-dashboard.png is made).
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from pathlib import Path

import httpx
import pytest
from conftest import wait_until
from prod_support import Proc

from loadtests.chromium import Browser, find_chromium
from treadle.server import Config, Server

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")

# Everything the page shows, read in one evaluation (one turn of the page's event loop, so
# the text and the snapshot it was drawn from belong together).
READ_PAGE = """(() => {
  if (!window.treadle || !window.treadle.last) return null;  // still loading, or not drawn yet
  const text = {};
  for (const el of document.querySelectorAll("[id]")) if (!el.children.length) text[el.id] = el.textContent;
  const rows = {};
  for (const tr of document.querySelectorAll("#status-table tr[id]"))
    rows[tr.id] = Array.from(tr.children, (td) => td.textContent);
  const workers = Array.from(document.querySelectorAll("#workers-table tr[data-key]"),
                             (tr) => Array.from(tr.children, (td) => td.textContent));
  return JSON.stringify({text, rows, workers, last: window.treadle.last, renders: window.treadle.renders});
})()"""


def wsgi_app(environ, start_response):
    status = "200 OK" if environ["PATH_INFO"] == "/" else "404 Not Found"
    body = b"hello\n" if status.startswith("200") else b"not here\n"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def browser(tmp_path):
    running = Browser(CHROMIUM, tmp_path / "profile")
    yield running
    running.close()


def read_page(browser: Browser) -> dict | None:
    """What the page shows, or None before it first drew a snapshot."""
    text = browser.evaluate(READ_PAGE)
    return None if text is None else json.loads(text)


def renders(browser: Browser) -> int:
    return browser.evaluate("window.treadle ? window.treadle.renders : 0")


def shown(text: str) -> float | None:
    return None if text == "–" else float(text)


def close_to(text: str, value: float | None, digits: int) -> bool:
    """The page's number is ``value`` to ``digits`` decimals (JavaScript's toFixed and
    Python round a tie differently, so one unit in the last place is allowed)."""
    if value is None:
        return text == "–"
    return abs(float(text) - value) <= 10**-digits * 1.01


def assert_page_shows_its_snapshot(page: dict) -> None:
    text, last = page["text"], page["last"]
    server, reactor, pool = last["server"], last["reactor"], last.get("threadpool")
    assert close_to(text["requests-per-second"], server["requests_per_second"], 1)
    assert shown(text["requests-total"]) == server["requests_total"]
    assert shown(text["requests-in-flight"]) == server["requests_in_flight"]
    assert shown(text["connections-open"]) == server["connections_open"]
    for q in ("p50", "p90", "p95", "p99"):
        assert close_to(text[f"latency-{q}"], server["latency_ms"][q], 2), q
    assert close_to(text["latency-mean"], server["latency_mean_ms"], 2)
    for name, count in server["responses_by_class"].items():
        assert page["rows"][f"status-{name}"][:2] == [name, str(count)]
    assert close_to(text["loop-lag"], reactor["lag_ms"], 2)
    assert close_to(text["loop-lag-max"], reactor["lag_max_ms"], 2)
    assert text["loop-selector"] == reactor["selector"]
    if pool is not None:
        assert [shown(text[f"pool-{key}"]) for key in ("busy", "threads", "waiting")] == [
            pool["busy"], pool["threads"], pool["waiting"]]


def test_the_dashboard_shows_what_stats_says_under_load(browser, tmp_path):
    server = Server(Config(wsgi_app, port=0, lifespan="off", threads=4, stats_port=0, access_log=False))
    server.start()
    stop = threading.Event()
    sent: list[int] = []

    def load() -> None:  # bounded: until told to stop, or 20000 requests
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            for n in range(20000):
                if stop.is_set():
                    return
                assert client.get("/" if n % 5 else "/missing").status_code in (200, 404)
                sent.append(n)

    loader = threading.Thread(target=load)
    try:
        host, port = server.observer.endpoint.address
        base = f"http://{host}:{port}"
        loader.start()
        wait_until(lambda: len(sent) > 200, timeout=10)
        browser.navigate(base + "/")
        wait_until(lambda: renders(browser) >= 3, timeout=15)  # drawn three times, under load
        busy = read_page(browser)
        assert_page_shows_its_snapshot(busy)
        assert busy["last"]["server"]["requests_per_second"] > 0
        assert float(busy["text"]["requests-per-second"]) > 0
        assert busy["last"]["server"]["responses_by_class"]["4xx"] > 0

        stop.set()
        loader.join(10)
        wait_until(lambda: server.state.stats.responses == len(sent), timeout=10)
        seen = renders(browser)
        wait_until(lambda: renders(browser) >= seen + 2, timeout=10)  # drawn since the load stopped
        page = read_page(browser)
        with urllib.request.urlopen(base + "/stats", timeout=5) as response:
            stats = json.load(response)
        assert_page_shows_its_snapshot(page)
        last, now = page["last"]["server"], stats["server"]
        for key in ("requests_total", "responses_total", "responses_by_class", "latency_count", "latency_ms",
                    "bytes_in", "bytes_out", "connections_open"):
            assert last[key] == now[key], key
        assert now["requests_total"] == len(sent)
        assert page["last"]["threadpool"]["threads"] == stats["threadpool"]["threads"] == 4
        assert page["text"]["status"] == "live"

        shot = Path(os.environ.get("TREADLE_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
        browser.screenshot(shot)
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    finally:
        stop.set()
        loader.join(10)
        server.shutdown(10)


def test_the_dashboard_of_a_supervisor_lists_its_workers(browser):
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--stats-port", "0", "--workers", "2")
    try:
        stats_port = int(proc.wait_for(r"Stats of all workers on http://127\.0\.0\.1:(\d+)/").group(1))
        port = proc.port()
        for _ in range(30):
            httpx.get(f"http://127.0.0.1:{port}/", headers={"Connection": "close"}, timeout=5)
        browser.navigate(f"http://127.0.0.1:{stats_port}/")

        def settled() -> dict | None:
            page = read_page(browser)
            if page is None:
                return None
            last = page["last"]
            done = last["server"]["requests_total"] == 30 and len(page["workers"]) == 2
            return page if done and all("server" in w for w in last["workers"]) else None

        page = wait_until(settled, timeout=15)
        assert_page_shows_its_snapshot(page)
        rows = {row[1]: row for row in page["workers"]}  # by pid
        for worker in page["last"]["workers"]:
            row = rows[str(worker["pid"])]
            assert row[0] == str(worker["worker"])
            assert row[3] == str(worker["server"]["requests_total"])
        assert sum(int(row[3]) for row in rows.values()) == 30
        assert page["text"]["supervisor-line"].startswith(f"supervisor {proc.pid}: 2 of 2 workers alive")
    finally:
        proc.kill_group()
