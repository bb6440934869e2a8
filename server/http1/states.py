"""The named states of an HTTP/1.1 connection and of its one timer.

::

    IDLE --head--> RECEIVING --end of body--> RESPONDING --response done--> IDLE (keep-alive)
                       \\--response done first--> DISCARDING --end of body--> IDLE
    (to IDLE while the client is behind on reading) --> DRAINING --it caught up--> IDLE
    any --error, close, Connection: close, WebSocket upgrade--> CLOSED

Both are compared on every request, so the connection binds the members to module names.
"""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    """Where the connection is in carrying an exchange."""

    IDLE = 0  # no request in flight: waiting for a head (or idle between requests)
    RECEIVING = 1  # a request is in flight and its body is still arriving
    RESPONDING = 2  # the whole request is in; its response is being produced
    DISCARDING = 3  # the response is done; the rest of the body is read and dropped
    CLOSED = 4  # closed, closing (lingering), or handed over to a WebSocket
    DRAINING = 5  # the response is done but the client has not taken it: the next request waits


class Deadline(IntEnum):
    """Which deadline the connection's one timer is armed for (server/http1/timers.py)."""

    NONE = 0
    REQUEST_HEAD = 1  # from accept, or from a head's first byte, until the head is complete
    KEEP_ALIVE = 2  # idle between requests
    LINGER = 3  # draining input after an early response, before closing
    REQUEST_BODY = 4  # the next body byte the client owes
    SEND = 5  # the client must take some of the response bytes waiting for it (--timeout-send)


class FirstStep(IntEnum):
    """Whether ``_handle_events`` is running an app's first step (server/http1/connection.py)."""

    OUTSIDE = 0  # it is not: a response completed now came from a later step, or a worker
    RUNNING = 1  # it is: a response completed now was made inside it
    NEXT_WAITING = 2  # ... and left a pipelined request for it to start next
