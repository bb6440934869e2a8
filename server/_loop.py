"""The one place the server creates its event loop.

Everything in ``server`` runs on a ``reactor.Reactor``; keeping loop creation here means a
backend choice (``--selector``) is honoured everywhere and tests exercise the real loop.
"""

from __future__ import annotations

from treadle import reactor


def available_selectors() -> list[str]:
    """Names accepted by ``create_loop`` on this platform."""
    return list(reactor.available_selectors())


def create_loop(selector: str | None = None) -> reactor.Reactor:
    """A new, not yet running, reactor loop using the named selector (None: the best one)."""
    return reactor.new_event_loop(selector)
