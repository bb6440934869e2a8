"""HTTP/1.1 on a transport: the connection (parsing, keep-alive, pipelining, deadlines, closing),
its two parsers and the WebSocket upgrade.
"""
