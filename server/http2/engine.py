"""``h2``'s connection object, configured for a server, with one correction.

RFC 9113 5.1.2: a HEADERS frame that would exceed the concurrent-stream limit the server
advertised is a *stream* error (PROTOCOL_ERROR or REFUSED_STREAM). h2 raises
``TooManyStreamsError``, a connection error, and so ends every stream of the connection
because one too many arrived (hypercorn issue 335). ``Engine`` refuses that stream alone:
it still decodes the header block, so that HPACK's dynamic table moves exactly as the
client's encoder moved it, notes the stream id as used (frames that follow for it are
answered as on any closed stream), and answers RST_STREAM REFUSED_STREAM, which tells the
client the request was not processed and may be retried (RFC 9113 8.7).

This relies on h2's internal ``_receive_headers_frame`` (which receives a whole header
block) and the public ``decoder`` and ``highest_inbound_stream_id`` attributes;
tests/test_http2_limits.py fails loudly if an h2 release changes them.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack.exceptions import HPACKError
from hyperframe.frame import RstStreamFrame

MAX_WINDOW = 2**31 - 1  # RFC 9113 6.9.1


class StreamRefused(h2.events.Event):
    """A stream over the concurrent-stream limit was refused (the connection lives on)."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return f"<StreamRefused stream_id:{self.stream_id}>"


class Engine(h2.connection.H2Connection):
    """h2's server-side connection, refusing a stream over the limit instead of the connection."""

    def _receive_headers_frame(self, frame: Any) -> Any:
        try:
            return super()._receive_headers_frame(frame)
        except h2.exceptions.TooManyStreamsError:
            pass
        try:
            self.decoder.decode(frame.data, raw=True)  # keep HPACK in step with the client
        except HPACKError as exc:
            raise h2.exceptions.ProtocolError(f"Error decoding a refused stream's header block: {exc}") from exc
        self.highest_inbound_stream_id = max(self.highest_inbound_stream_id, frame.stream_id)
        reset = RstStreamFrame(frame.stream_id)
        reset.error_code = ErrorCodes.REFUSED_STREAM
        return [reset], [StreamRefused(frame.stream_id)]


def new_engine(
    max_streams: int, stream_window: int, max_header_list: int, websockets: bool
) -> Engine:
    """A server-side engine advertising these limits (its SETTINGS, sent by ``initiate_connection``):
    ``max_streams`` concurrent streams, a ``stream_window`` for each stream's request body, header
    lists of ``max_header_list`` bytes, and extended CONNECT (RFC 8441) if ``websockets``."""
    config = h2.config.H2Configuration(
        client_side=False,
        header_encoding=None,  # headers stay bytes, as ASGI wants them
        validate_inbound_headers=True,
        normalize_inbound_headers=True,  # RFC 9113 8.2.3: cookie crumbs joined into one field
        # What we send is checked and lowered by the stream (server/http2/stream.py), once:
        # h2's own pass over every response's fields would do it again.
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )
    engine = Engine(config=config)
    codes = h2.settings.SettingCodes
    engine.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            codes.MAX_CONCURRENT_STREAMS: max_streams,
            codes.INITIAL_WINDOW_SIZE: min(stream_window, MAX_WINDOW),
            codes.MAX_HEADER_LIST_SIZE: max_header_list,
            codes.ENABLE_CONNECT_PROTOCOL: int(websockets),
        },
    )
    # Enforced from the first request, before the client acknowledges our SETTINGS.
    engine.decoder.max_header_list_size = max_header_list
    return engine
