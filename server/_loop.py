"""The one place the server creates its event loop.

Everything in ``server`` runs on a ``reactor.Reactor``; keeping loop creation here means a
backend choice (``--selector``) is honoured everywhere and tests exercise the real loop.
"""

from __future__ import annotations

import asyncio


def available_selectors() -> list[str]:
    """Names accepted by ``create_loop`` on this platform."""
    import reactor

    return list(reactor.available_selectors())


def create_loop(selector: str | None = None) -> asyncio.AbstractEventLoop:
    """A new, not yet running, reactor loop using the named selector (None: the best one)."""
    import os

    if os.environ.get("TREADLE_DEV_ASYNCIO"):  # TEMPORARY, removed once reactor is usable
        return asyncio.new_event_loop()
    try:
        import reactor

        return reactor.new_event_loop(selector)
    except (ImportError, AttributeError):  # pragma: no cover - temporary, until reactor lands
        return asyncio.new_event_loop()
