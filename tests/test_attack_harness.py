"""The adversarial harness itself (``python -m loadtests.attack``), as a smoke test: two of
its attacks run small, end to end, and leave no server behind. The defences it measures
are tested one by one in the other tests/test_attack_*.py files."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loadtests.attack", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_a_quick_run_prints_the_table_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "table.md"
    done = harness("--quick", "--only", "slowloris", "--only", "compression bombs", "--out", str(out),
                   "--logs", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| attack | connections | control p99 | RSS MiB before / peak / after |")
    assert [line.split(" | ")[0] for line in lines[1:]] == [
        "| HTTP/1.1: slowloris heads",
        "| WebSocket: compression bombs (64 MiB of zeros)",
    ]
    assert "50/50 got 408" in lines[1] and "3/3 closed with 1009" in lines[2]
    assert out.read_text().startswith(lines[0])
    ports = [int(log.stem.rsplit("-", 1)[1]) for log in tmp_path.glob("treadle-attack-*.log")]
    assert len(ports) == 2  # a server per attack, each stopped:
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_it_lists_its_attacks_and_refuses_a_target_off_loopback():
    listed = harness("--list", timeout=60)
    assert listed.returncode == 0
    assert "HTTP/1.1: slowloris heads" in listed.stdout and "soak: a mixed million requests" in listed.stdout
    refused = harness("--url", "http://10.0.0.1:8000", "--only", "slowloris", timeout=60)
    assert refused.returncode != 0 and "loopback only" in refused.stderr


def test_the_soak_runs_the_whole_mix(tmp_path):
    """Every kind of traffic of the soak really ran: wrk's mix (one request in five an app
    error, the rest 200), WebSocket sessions, clients vanishing; the harness judges the rest."""
    done = harness("--quick", "--only", "soak", "--soak-requests", "2000", "--logs", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("| soak:"))
    requests, errors, sessions, vanished = (int(n.replace(",", "")) for n in re.findall(
        r"([\d,]+) HTTP requests .*?([\d,]+) 500s .*?([\d,]+) WebSocket sessions, ([\d,]+) clients vanished", row)[0])
    assert requests >= 2000 and abs(errors - requests / 5) < 50
    assert sessions > 0 and vanished > 0
