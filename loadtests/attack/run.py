"""Running one attack: a fresh server, the control client beside it, the server sampled
throughout, everything stopped at the end whatever happens.

The server is started for each attack with the attack's flags, so one attack's leftovers
never colour the next one's figures; ``--url`` aims every attack at one server instead.
"before" is sampled once the control client has been answered and the server has settled;
"peak" is the largest of the samples taken every ``SAMPLE_EVERY`` during the attack;
"after" once the server's descriptors are back where they were (or ``SETTLE`` has passed).
An attack during which the control client's p99 passed ``Attack.control_p99_limit`` did not
hold, whatever it did to the attacker: the defence must spare everybody else.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from pathlib import Path
from typing import Sequence

from loadtests.attack.report import Attack, Outcome, Row
from loadtests.attack.target import Control, Sample, Target, wait_for

SAMPLE_EVERY = 0.1
SETTLE = 10.0  # seconds for the server to let go of an attack's connections


class Sampler(threading.Thread):
    """Samples the target every SAMPLE_EVERY and keeps the largest values."""

    def __init__(self, target: Target) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.peak = target.sample()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_EVERY):
            now = self.target.sample()
            self.peak = Sample(_max(self.peak.rss_kib, now.rss_kib), _max(self.peak.fds, now.fds))

    def stop(self) -> Sample:
        self._stop_event.set()
        self.join()
        return self.peak


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def run_attack(attack: Attack, quick: bool, log_dir: Path, url: tuple[str, int, int | None] | None) -> Row:
    flags = list(attack.flags(quick))
    if url is None:
        target = Target.start(flags, attack.fd_limit(quick), log_dir, attack.stats)
    else:
        target = Target.external(*url)
    started = time.monotonic()
    try:
        control = target.control = Control(target, seconds=attack.time_limit + 120)
        try:
            time.sleep(0.5)  # the control client's first answers: the server is warm
            before = target.sample()
            sampler = Sampler(target)
            sampler.start()
            try:
                outcome = _bounded(attack, target, quick)
            finally:
                peak = sampler.stop()
            # The server lets go of the attack's connections: its descriptors come back.
            wait_for(lambda: _settled(target, before), SETTLE, interval=0.2)
            after = target.sample()
            peak = Sample(_max(peak.rss_kib, after.rss_kib), _max(peak.fds, after.fds))
        finally:
            measured = control.finish()
    finally:
        if url is None and target.child is not None and target.child.exited() is None:
            target.stop()
    p99 = measured.get("p99_ms")
    if p99 is not None and p99 > attack.control_p99_limit:
        outcome.did += f"; the control client's p99 was {p99 / 1000:.1f} s"
        outcome.held = False
    return Row(attack, outcome, measured, before, peak, after, time.monotonic() - started, flags)


def _settled(target: Target, before: Sample) -> bool:
    now = target.sample()
    return now.fds is None or before.fds is None or now.fds <= before.fds + 2


def _bounded(attack: Attack, target: Target, quick: bool) -> Outcome:
    """Run the attack within its time limit; one that overruns is a finding, not a hang."""
    limit = attack.time_limit
    result = attack.run(target, quick)
    if inspect.isawaitable(result):
        try:
            return asyncio.run(asyncio.wait_for(result, limit))
        except asyncio.TimeoutError:
            return Outcome(0, f"did not finish within {limit:.0f} s", False)
    return result


def run_all(attacks: Sequence[Attack], quick: bool, log_dir: Path, url: tuple[str, int, int | None] | None,
            progress=print) -> list[Row]:
    rows = []
    for attack in attacks:
        progress(f"{attack.family}: {attack.name} ...")
        try:
            row = run_attack(attack, quick, log_dir, url)
        except Exception as exc:  # a broken attack or server start: record it, go on
            unknown = Sample(None, None)
            outcome = Outcome(0, f"the attack failed to run: {exc!r}", False)
            row = Row(attack, outcome, {}, unknown, unknown, unknown, 0.0)
        progress(f"  {row.outcome.did} ({row.seconds:.0f} s)")
        rows.append(row)
    return rows
