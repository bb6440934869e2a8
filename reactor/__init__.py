"""Treadle's reactor: a hand-built asyncio event loop on top of `selectors`.

It knows nothing of HTTP. Use it the way uvloop is used:

    reactor.run(main())                       # like asyncio.run, on a Reactor
    loop = reactor.new_event_loop("epoll")    # a loop of your own
    asyncio.set_event_loop_policy(reactor.EventLoopPolicy())
"""

from __future__ import annotations

from .loop import Reactor
from .runner import EventLoopPolicy, new_event_loop, run
from .selection import available_selectors

__all__ = ["Reactor", "EventLoopPolicy", "available_selectors", "new_event_loop", "run"]
