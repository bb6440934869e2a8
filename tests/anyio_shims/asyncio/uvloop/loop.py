"""`uvloop.loop.Loop`, which anyio's conftest inspects."""

from asyncio import SelectorEventLoop as Loop

__all__ = ["Loop"]
