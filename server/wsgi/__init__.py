"""WSGI apps on a pool of worker threads: the per-request cycle, its environ and input stream, the
pool, and the hand-off back to the loop.
"""
