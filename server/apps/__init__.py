"""Which apps a server serves and how requests reach them: loading, interface detection, mounts,
and the built-in middleware (proxy headers, CORS).
"""
