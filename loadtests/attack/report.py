"""What an attack is, what it found, and the table the harness prints (docs/reliability.md).

An ``Attack`` is a name, the server flags it needs, and a function that runs it against a
``Target`` (async, on asyncio, or plain for the ones that drive other programs). The
function returns an ``Outcome``: how many connections it used, what the server did, and
whether the defence held. The runner (loadtests/attack/run.py) adds the control client's
latency and the server's memory and descriptors before, at the peak of and after the attack,
making a ``Row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from loadtests.attack.target import Sample


@dataclass
class Outcome:
    connections: int
    did: str  # what the server did, as measured
    held: bool  # the defence held (False: a finding)


@dataclass
class Attack:
    name: str
    family: str  # HTTP/1.1, WebSocket, stats endpoint, app faults, processes, soak
    run: Callable[[Any, bool], Any]  # (target, quick) -> Outcome, or an awaitable of one
    flags: Callable[[bool], Sequence[str]] = lambda quick: ()  # server flags (quick or full)
    fd_limit: Callable[[bool], int | None] = lambda quick: None  # ulimit -n for the server
    stats: bool = False  # serve --stats-port
    time_limit: float = 120.0  # seconds: the attack is cut off past this
    # The control client's p99 past this (ms) means the attack cost everybody else: not held.
    control_p99_limit: float = 1000.0
    needs_url: bool = False  # runs only against a server the harness starts


@dataclass
class Row:
    attack: Attack
    outcome: Outcome
    control: dict
    before: Sample
    peak: Sample
    after: Sample
    seconds: float
    flags: Sequence[str] = field(default_factory=tuple)

    def cells(self) -> list[str]:
        control = self.control
        p99 = control.get("p99_ms")
        errors = sum(control.get("errors", {}).values())
        latency = "—" if p99 is None else f"{p99:.1f} ms"
        if errors:
            latency += f" ({errors} failed)"
        return [
            f"{self.attack.family}: {self.attack.name}",
            str(self.outcome.connections),
            latency,
            _trio(self.before.rss_kib, self.peak.rss_kib, self.after.rss_kib, mib=True),
            _trio(self.before.fds, self.peak.fds, self.after.fds),
            self.outcome.did + ("" if self.outcome.held else " **(not held)**"),
        ]


HEADER = ["attack", "connections", "control p99", "RSS MiB before / peak / after", "fds before / peak / after",
          "what the server did"]


def _trio(before: int | None, peak: int | None, after: int | None, mib: bool = False) -> str:
    def show(value: int | None) -> str:
        if value is None:
            return "?"
        return f"{value / 1024:.0f}" if mib else str(value)

    return f"{show(before)} / {show(peak)} / {show(after)}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (readable as plain text too)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
    return "\n".join(lines)


def flags_used(rows: Sequence[Row]) -> str:
    """Each attack's server flags, for the record under the table."""
    return "\n".join(f"- {row.attack.family}: {row.attack.name}: `{' '.join(row.flags) or '(defaults)'}`"
                     f" ({row.seconds:.0f} s)" for row in rows)
