"""Waking a coroutine parked on a future until the reactor has news for it.

A cycle parks ``receive()`` on a future until body arrives; a connection parks the app's
``send()`` until the transport drains. Whoever settles one may find it already done (its
task was cancelled meanwhile), so every such site needs the same guard: it lives here.
"""

from __future__ import annotations

import asyncio


def wake(waiter: asyncio.Future | None) -> None:
    """Let whatever awaits ``waiter`` go on; nothing if there is none or it is done already."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
