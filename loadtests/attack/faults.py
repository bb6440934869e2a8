"""Apps that fail at every point (loadtests/attack/apps.py): before the response starts,
after, inside a WSGI iterable, in its ``close()``; apps that never read the body, and one
that never answers. Each must end in a 500 or a clean close, with a log line, nothing
leaked, and the server serving on.
"""

from __future__ import annotations

import asyncio
import re

from loadtests.attack.apps import ASGI_FAULTS, WSGI_FAULTS
from loadtests.attack.clients import Peer, connect, gather_bounded, request, status_of
from loadtests.attack.report import Attack, Outcome
from loadtests.attack.target import Target

BODY = b"u" * (256 * 1024)  # past what the server buffers for an app that does not read it
AT_ONCE = 50


async def _one(target: Target, path: str) -> str:
    """One faulty request: "200", "500", ... or "closed mid-body" / "no answer"."""
    peer = await connect(target.host, target.port)
    try:
        peer.send(request("POST", path, ["Connection: close"], BODY))
        got, closed = await peer.until_closed(10)
    finally:
        peer.close()
    status = status_of(got)
    if status is None:
        return "no answer" if closed is None else "closed before answering"
    head, _, body = got.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    if length is not None and len(body) < int(length.group(1)):
        return "closed mid-body"
    return str(status)


async def app_faults(target: Target, quick: bool) -> Outcome:
    rounds = 20 if quick else 250
    cases = [(f"/fault/{name}", expected) for name, expected in ASGI_FAULTS.items()]
    cases += [(f"/wsgi/fault/{name}", expected) for name, expected in WSGI_FAULTS.items()]
    wrong: dict[str, int] = {}
    for path, (expected, _) in cases:
        for start in range(0, rounds, AT_ONCE):
            results = await gather_bounded((_one(target, path) for _ in range(min(AT_ONCE, rounds - start))), 60)
            for result in results:
                if result != expected:
                    key = f"{path}: {result}"
                    wrong[key] = wrong.get(key, 0) + 1
    hung = await _never_answers(target, AT_ONCE)
    log = target.log()
    logged = {line for _, (_, line) in cases if line is not None}
    missing = [line for line in logged if line not in log] if target.child is not None else []
    count = rounds * len(cases) + AT_ONCE
    did = f"{rounds} of each of {len(cases)} faults, ASGI and WSGI, with a 256 KiB body: " + (
        "each a 500 or a clean close as expected, and logged" if not wrong and not missing
        else f"unexpected: {wrong}, not logged: {missing}")
    did += f"; {hung}"
    return Outcome(count, did, not wrong and not missing)


async def _never_answers(target: Target, count: int) -> str:
    """Clients of an app that never answers give up after a second: their connections must go."""
    peers: list[Peer] = await asyncio.gather(*(connect(target.host, target.port) for _ in range(count)))
    for peer in peers:
        peer.send(request("GET", "/fault/never-answers"))
    results = await gather_bounded((peer.until_closed(1.0) for peer in peers), 5)
    for peer in peers:
        peer.close()
    answered = sum(1 for r in results if r is not None and r[0])
    return (f"{count} requests to an app that never answers: {answered} answered, the clients left after 1 s "
            f"(their apps run on until shutdown cancels them)")


ATTACKS = [
    Attack("errors at every point, unread bodies, no answer", "app faults", app_faults, time_limit=300),
]
