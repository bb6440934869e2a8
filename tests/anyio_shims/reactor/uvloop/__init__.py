"""A stand-in for uvloop that hands out Treadle's reactor (tests/anyio_conformance.py).

anyio's test suite runs every async test a second time on `uvloop.new_event_loop`; with this
package first on sys.path, that run is on the Reactor.
"""

from treadle.reactor import EventLoopPolicy, Reactor, new_event_loop, run

from . import loop

Loop = Reactor

__all__ = ["EventLoopPolicy", "Loop", "loop", "new_event_loop", "run"]
