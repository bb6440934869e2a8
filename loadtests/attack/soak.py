"""The soak: a mixed workload for a million requests, and whether memory and descriptors
stay flat once warm.

HTTP comes from wrk with loadtests/lua/attack_mix.lua (plaintext, JSON, uploads, app
errors, a WSGI app leaving its body unread); beside it a thread of our own opens WebSocket
sessions (ten echoes each) and clients that vanish mid-request (reset) or mid-response.
wrk runs in segments until the request count is reached, and the server is sampled after
each, at rest (the side traffic paused, the last connections closed): the first tenth of
the run is the warm-up, the figures after it are compared with the last.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from pathlib import Path

from wsproto.events import BytesMessage, CloseConnection

from loadtests.attack.clients import WebSocketPeer, connect, request
from loadtests.attack.processes import WrkReport
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Sample, Target, wait_for

FULL_REQUESTS = 1_000_000
QUICK_REQUESTS = 20_000
SEGMENT = 10  # seconds of wrk between samples
SCRIPT = Path(__file__).resolve().parent.parent / "lua" / "attack_mix.lua"
GROWTH_ALLOWED_KIB = 16 * 1024  # after warm-up: allocator noise, not a leak


class SideTraffic(threading.Thread):
    """WebSocket sessions and vanishing clients, in a loop, until stopped."""

    def __init__(self, target: Target) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.sessions = 0
        self.vanished = 0
        self.failures: list[str] = []
        self._stop_event = threading.Event()
        self._go = threading.Event()  # cleared: wait (the server is being sampled)
        self._go.set()
        self._idle = threading.Event()  # set while waiting

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        while not self._stop_event.is_set():
            if not self._go.is_set():
                self._idle.set()
                self._go.wait()  # blocks this thread's loop: it has nothing else to do
                self._idle.clear()
            try:
                await self._session()
                await self._vanish()
            except Exception as exc:  # counted and reported: the soak goes on
                self.failures.append(repr(exc))
            await asyncio.sleep(0.01)

    async def _session(self) -> None:
        ws = await WebSocketPeer.open(self.target.host, self.target.port)
        for i in range(10):
            ws.send(BytesMessage(data=b"%d" % i))
            echoed = False
            while not echoed:
                events = await ws.events(5)
                if not events:
                    raise OSError("no echo")
                echoed = any(isinstance(e, BytesMessage) for e in events)
        ws.send(CloseConnection(code=1000))
        await ws.events(1)
        ws.peer.close()
        self.sessions += 1

    async def _vanish(self) -> None:
        mid_request = await connect(self.target.host, self.target.port)
        mid_request.send(request("POST", "/upload", ["Content-Length: 100000"]) + b"x" * 1000)
        mid_response = await connect(self.target.host, self.target.port)
        mid_response.send(request("GET", "/stream"))
        await asyncio.wait_for(mid_response.reader.read(65536), 5)
        mid_request.reset()
        mid_response.reset()
        self.vanished += 2

    def pause(self) -> None:
        """Stop between two rounds (returns once stopped)."""
        self._go.clear()
        self._idle.wait(30)

    def resume(self) -> None:
        self._go.set()

    def stop(self) -> None:
        self._stop_event.set()
        self._go.set()
        self.join(30)


def _at_rest(target: Target, baseline: Sample) -> bool:
    fds = target.sample().fds
    return fds is None or baseline.fds is None or fds <= baseline.fds + 2


def _mib(sample: Sample) -> str:
    return "?" if sample.rss_kib is None else f"{sample.rss_kib / 1024:.1f} MiB"


def _series(samples: list[tuple[int, Sample]], wanted: int) -> str:
    """The first sample past each tenth of the run, as "RSS MiB/fds", so growth shows as a
    trend rather than as two numbers."""
    picked: list[Sample] = []
    for tenth in range(1, 11):
        later = [s for n, s in samples if n >= wanted * tenth / 10]
        if later and (not picked or later[0] is not picked[-1]):
            picked.append(later[0])
    return ", ".join(f"{'?' if s.rss_kib is None else f'{s.rss_kib / 1024:.1f}'}/{s.fds}" for s in picked)


def soak(target: Target, quick: bool, requests: int | None = None) -> Outcome:
    if shutil.which("wrk") is None:
        return Outcome(0, "skipped: wrk is not installed (apt-get install wrk)", True)
    wanted = requests or (QUICK_REQUESTS if quick else FULL_REQUESTS)
    segment = 3 if quick else SEGMENT
    side = SideTraffic(target)
    side.start()
    done = errors = non_2xx = 0
    samples: list[tuple[int, Sample]] = []
    baseline = target.sample()
    started = time.monotonic()
    try:
        while done < wanted:
            argv = ["wrk", "-t1", "-c32", f"-d{segment}s", "--timeout", "10s", "-s", str(SCRIPT),
                    f"http://{target.host}:{target.port}/"]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=segment + 60)
            report = WrkReport.parse(out.stdout + out.stderr)
            if not report.requests:
                return Outcome(0, f"wrk failed: {report.text[-300:]!r}", False)
            done += report.requests
            errors += report.socket_errors
            non_2xx += report.non_2xx
            # Sampled at rest: the side traffic paused, the server's connections closed.
            side.pause()
            wait_for(lambda: _at_rest(target, baseline), 10, interval=0.1)
            samples.append((done, target.sample()))
            side.resume()
    finally:
        side.stop()
    elapsed = time.monotonic() - started
    warm = next((s for n, s in samples if n >= wanted / 10), samples[0][1])
    end = samples[-1][1]
    growth = None if warm.rss_kib is None or end.rss_kib is None else end.rss_kib - warm.rss_kib
    fds_flat = warm.fds is None or end.fds is None or abs(end.fds - warm.fds) <= 2
    expected_errors = done // 5  # one request in five is the app error (a 500)
    did = (f"{done:,} HTTP requests in {elapsed:.0f} s ({done / elapsed:,.0f}/s; {non_2xx:,} 500s from the "
           f"erring route, {errors} socket errors), {side.sessions:,} WebSocket sessions, {side.vanished:,} clients "
           f"vanished mid-request or mid-response; after warm-up RSS {_mib(warm)} → {_mib(end)}, "
           f"fds {warm.fds} → {end.fds}")
    if len(samples) > 2:
        did += f" (after each tenth of the run: {_series(samples, wanted)})"
    if side.failures:
        did += f"; {len(side.failures)} side sessions failed, first: {side.failures[0]}"
    mixed = side.sessions > 0 and side.vanished > 0 and abs(non_2xx - expected_errors) <= len(samples) * 5
    held = (growth is None or growth < GROWTH_ALLOWED_KIB) and fds_flat and errors == 0 and not side.failures \
        and mixed
    return Outcome(32, did, held)


def attack(requests: int | None = None) -> Attack:
    return Attack("a mixed million requests", "soak", lambda target, quick: soak(target, quick, requests),
                  time_limit=1800, needs_url=False)

