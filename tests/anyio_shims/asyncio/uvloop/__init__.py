"""A stand-in for uvloop that hands out asyncio's own loop: the baseline of tests/anyio_conformance.py.

The same test ids as the Reactor's run, on `asyncio.SelectorEventLoop`, from the same checkout
of anyio's suite and the same venv.
"""

import asyncio
from asyncio import new_event_loop

from . import loop

Loop = asyncio.SelectorEventLoop
EventLoopPolicy = asyncio.DefaultEventLoopPolicy
run = asyncio.run

__all__ = ["EventLoopPolicy", "Loop", "loop", "new_event_loop", "run"]
