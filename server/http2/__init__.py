"""HTTP/2 on a transport (RFC 9113), with ``h2`` for framing, HPACK and the stream states:
the connection (negotiation, flow control, fair sending, limits, graceful GOAWAY) and its
streams, each carrying one exchange exactly as an HTTP/1.1 connection carries one.
"""
