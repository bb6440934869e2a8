"""Choose the readiness-notification backend (epoll, kqueue, poll, select, devpoll) by name.

The reactor never polls sockets itself: it asks the OS which ones are ready through one of
the `selectors` classes. This module maps the names users pass on the command line to
those classes and refuses, with the list of choices, a name this OS does not offer.
"""

from __future__ import annotations

import selectors

# Best first: the kernel-side interest lists (epoll, kqueue, devpoll) cost O(ready) per call;
# poll and select cost O(registered), and select also stops at fd 1024.
_BACKENDS = (
    ("epoll", "EpollSelector"),
    ("kqueue", "KqueueSelector"),
    ("devpoll", "DevpollSelector"),
    ("poll", "PollSelector"),
    ("select", "SelectSelector"),
)
_KNOWN = tuple(name for name, _ in _BACKENDS)


def available_selectors() -> list[str]:
    """Names of the backends this OS offers, best first."""
    return [name for name, cls in _BACKENDS if hasattr(selectors, cls)]


def make_selector(name: str | None = None) -> selectors.BaseSelector:
    """A new selector for backend `name`, or the best the OS has when `name` is None."""
    available = available_selectors()
    if name is None:
        name = available[0]
    if name not in _KNOWN:
        raise ValueError(f"unknown selector {name!r}: choose one of {', '.join(available)}")
    if name not in available:
        raise ValueError(
            f"selector {name!r} is not available on this system: choose one of {', '.join(available)}"
        )
    return getattr(selectors, dict(_BACKENDS)[name])()
