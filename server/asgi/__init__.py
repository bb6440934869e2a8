"""The ASGI side of an exchange: the HTTP request cycle, the WebSocket session and lifespan, each
independent of the wire protocol carrying it.
"""
