"""`uvloop.loop.Loop`, which anyio's conftest inspects."""

from treadle.reactor import Reactor as Loop

__all__ = ["Loop"]
