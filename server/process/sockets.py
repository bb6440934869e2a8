"""The listening sockets: TCP (IPv4 or IPv6, optionally ``SO_REUSEPORT``), a Unix domain
socket (``--uds``), or ones inherited from whoever started us (``--fd``, socket activation).

Kept apart from ``Server`` because the supervisor binds once and shares the sockets with
every worker it forks, and the gunicorn worker receives gunicorn's sockets instead.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any


def bind_sockets(config: Any) -> list[socket.socket]:
    """Listening, non-blocking sockets for ``config``: one per ``--fd`` (each served alike),
    else one for ``--uds``, else one for host and port.

    Raises ``OSError`` whose message names the address and the reason (and closes the
    sockets already made).
    """
    socks: list[socket.socket] = []
    try:
        if config.fd:
            for fd in config.fd:
                socks.append(_inherited(fd))
        elif config.uds:
            socks.append(_bind_unix(config.uds))
        else:
            socks.append(_bind_tcp(config.host, config.port, config.reuse_port))
        for sock in socks:
            sock.listen(config.backlog)
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """How to reach ``sock``, for the start-up log line: ``http://[::1]:8000``, ``http+unix:/run/app.sock``."""
    address = sock.getsockname()
    if sock.family == getattr(socket, "AF_UNIX", None):
        return f"{scheme}+unix:{address}" if address else f"{scheme}+unix:(unnamed)"
    host, port = address[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def remove_unix_socket(config: Any) -> None:
    """Remove the socket file ``bind_sockets`` made for ``--uds`` (call once, from whoever
    bound it, when done serving). With ``--fd`` the socket is not ours to remove."""
    if not config.fd and config.uds and _is_socket(config.uds):
        os.unlink(config.uds)


def _bind_tcp(host: str, port: int, reuse_port: bool) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(exc.errno, f"Cannot resolve host {host!r}: {exc.strerror}")
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError("--reuse-port is not supported on this platform")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host not in ("::", ""):
            # A specific IPv6 address means exactly that; "::" is left dual-stack (where the
            # OS allows it) so one listener serves both families, as containers expect.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise OSError(exc.errno, f"Cannot listen on {shown}:{port}: {exc.strerror or exc}")
    return sock


def _bind_unix(path: str) -> socket.socket:
    # A stale socket file from an earlier run would make bind() fail; remove it, but
    # never a file that is not a socket.
    if _is_socket(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"Cannot listen on unix:{path}: {exc.strerror or exc}")
    return sock


def _inherited(fd: int) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise OSError(exc.errno, f"--fd {fd} is not a usable socket: {exc.strerror or exc}")
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError(f"--fd {fd} is not a stream socket")
    return sock


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
