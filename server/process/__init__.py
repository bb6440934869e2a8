"""Processes and sockets: the supervisor for --workers and --reload, the gunicorn worker class,
file watching, and binding listeners.
"""
