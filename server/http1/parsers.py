"""The two HTTP/1.1 request parsers (``--http fast``, the default, and ``--http h11``) behind one
interface, held to the same rules, so the connection is written once against one vocabulary
and a request gets the same answer whichever engine reads it.

The interface is the fast parser's own (server/http1/fastparse): ``receive_data(bytes)``,
``next_event()`` returning ``Request`` (a complete head, with the framing facts the server
needs worked out: keep-alive, length, chunked, 100-continue, ``TE: trailers``, upgrade),
``Data``, ``EndOfMessage``, ``NEED_DATA`` or ``PAUSED``, raising ``RemoteProtocolError``
with the status to answer; ``trailing_data`` (and ``buffered``, its size); ``they_are_waiting_for_100_continue``; and
``next_request()`` once an exchange is over (True if the next request's bytes are here).

The h11 engine's parser (server/http1/h11parser.py) puts h11's parsing behind it, judged by
the fast engine's rules.
"""

from __future__ import annotations

from typing import Any

from treadle.server.http1.fastparse import Limits, ServerConnection


def parser_limits(config: Any) -> Limits:
    """What the server's options (a ``Config``) hold a client's requests to."""
    return Limits(
        head_size=config.limit_request_head_size,
        fields=config.limit_request_fields,
        body_size=config.limit_request_body_size,
        chunk_extension_size=config.limit_chunk_extension_size,
        chunk_extension_total=config.limit_chunk_extension_total,
        bare_lf=config.accept_bare_lf,
    )


def new_parser(engine: str, limits: Limits) -> Any:
    """The parser ``--http`` names, for one connection."""
    if engine == "fast":
        return ServerConnection(limits)
    # Imported when asked for: the h11 engine reads h11's private modules, which a later h11
    # may change; the fast engine must not depend on them.
    from treadle.server.http1.h11parser import H11Parser

    return H11Parser(limits)
