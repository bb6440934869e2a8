"""A connection flood past the server's descriptor limit (its ``ulimit -n`` lowered).

accept() fails with EMFILE once the server is out of descriptors; it must back off (not spin
on a listener that stays readable), keep serving the connections it has — the control
client's among them, connected before the flood — and accept again by itself once the
flood lets go.
"""

from __future__ import annotations

import asyncio
import os
import time

from loadtests.attack.clients import connect, connect_many, request, status_of
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target

FD_LIMIT = {True: 128, False: 1024}


async def flood_past_the_fd_limit(target: Target, quick: bool) -> Outcome:
    limit = FD_LIMIT[quick]
    count, hold = 2 * limit, (2.0 if quick else 10.0)
    cpu_before = _cpu_seconds(target.pid)
    peers = await connect_many(target.host, target.port, count)  # the backlog holds what is not accepted
    await asyncio.sleep(hold)
    cpu = None if cpu_before is None else _cpu_seconds(target.pid) - cpu_before
    backed_off = "out of system resource" in target.log()
    for peer in peers:
        peer.close()
    # Recovery: how long until a new client is answered.
    started = time.monotonic()
    recovered = None
    while time.monotonic() - started < 15:
        try:
            fresh = await asyncio.wait_for(connect(target.host, target.port), 2)
            fresh.send(request())
            got, _ = await fresh.until_closed(2, limit=64)
            fresh.close()
            if status_of(got) == 200:
                recovered = time.monotonic() - started
                break
        except (OSError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.05)
    spent = "" if cpu is None else f", {cpu:.2f} s of CPU in {hold:g} s of flood"
    did = (f"{count} connections on {limit} fds: accept backed off (EMFILE){spent}; "
           + (f"new clients served {recovered:.1f} s after the flood left" if recovered is not None
              else "no new client served within 15 s"))
    return Outcome(count, did, backed_off and recovered is not None and (cpu is None or cpu < hold / 2))


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ATTACKS = [
    Attack("connection flood past the fd limit", "HTTP/1.1", flood_past_the_fd_limit,
           lambda quick: ["--timeout-request-header", "60"], fd_limit=FD_LIMIT.get, time_limit=60, needs_url=True),
]
