"""Connections and servers: name resolution, connect, listen/accept, TLS, transport sendfile.

Everything here turns sockets into `SocketTransport`s. TLS is layered on a plain transport
by asyncio's `SSLProtocol` (the TLS state machine over memory BIOs), which needs nothing
from a loop but the public API; the reactor supplies the socket beneath it.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ipaddress
import itertools
import os
import socket
import stat
import sys
from asyncio import sslproto

from .server import Server
from .transports import SocketTransport

_HAS_IPV6 = socket.has_ipv6
_HAS_UNIX = hasattr(socket, "AF_UNIX")
_SSL_KWARGS = ("ssl_handshake_timeout", "ssl_shutdown_timeout")
# Errors from accept() that mean "the process is out of descriptors or memory": stop
# accepting for a while instead of spinning on a listener that stays readable.
_ACCEPT_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
ACCEPT_RETRY_DELAY = 1.0


def _is_ip_literal(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        # A host given as bytes is already ASCII (an IDNA A-label such as anyio's IDNA 2008
        # encoding of "faß.de"); Python's "idna" codec is IDNA 2003 and would refuse some.
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def _check_ssl_args(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout) -> None:
    if not ssl:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        if ssl_handshake_timeout is not None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def _default_client_context(server_side: bool, server_hostname):
    """The context `ssl=True` means: the system's trusted CAs, checking the peer's name if one is given.

    A server cannot do with a default context: it needs its own certificate.
    """
    import ssl as ssl_module

    if server_side:
        raise ValueError("Server side SSL needs a valid SSLContext")
    context = ssl_module.create_default_context()
    if not server_hostname:
        context.check_hostname = False  # nothing to check against (create_connection(sock=...))
    return context


def _ssl_protocol(loop, app_protocol, sslcontext, waiter, server_side, server_hostname,
                  handshake_timeout, shutdown_timeout, call_connection_made=True):
    kwargs = {"ssl_handshake_timeout": handshake_timeout, "call_connection_made": call_connection_made}
    if sys.version_info >= (3, 11):
        kwargs["ssl_shutdown_timeout"] = shutdown_timeout
    elif shutdown_timeout is not None:
        raise ValueError("ssl_shutdown_timeout needs Python 3.11 or newer")
    return sslproto.SSLProtocol(loop, app_protocol, sslcontext, waiter, server_side, server_hostname, **kwargs)


class Networking:
    """Mixin for the reactor: resolution, connections, servers and TLS."""

    # ------------------------------------------------------------------ name resolution

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        if _is_ip_literal(host):
            # Numeric hosts need no DNS: resolve inline instead of paying for a thread hop.
            return socket.getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        return await self.run_in_executor(None, socket.getaddrinfo, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    async def _ensure_resolved(self, address, *, family=0, type=socket.SOCK_STREAM, proto=0, flags=0):
        host, port = address[:2]
        infos = await self.getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    # ------------------------------------------------------------------ outgoing connections

    async def create_connection(
        self, protocol_factory, host=None, port=None, *, ssl=None, family=0, proto=0, flags=0,
        sock=None, local_addr=None, server_hostname=None, ssl_handshake_timeout=None,
        ssl_shutdown_timeout=None, happy_eyeballs_delay=None, interleave=None, all_errors=False,
    ):
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        _check_ssl_args(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sock = await self._connect_first(host, port, family, proto, flags, local_addr,
                                             happy_eyeballs_delay, interleave, all_errors)
        elif sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        elif sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        return await self._make_connection(sock, protocol_factory, ssl, server_hostname, False,
                                           ssl_handshake_timeout, ssl_shutdown_timeout)

    async def _connect_first(self, host, port, family, proto, flags, local_addr,
                             happy_eyeballs_delay, interleave, all_errors):
        """Try each resolved address (interleaving families for happy eyeballs); first success wins."""
        infos = await self._ensure_resolved((host, port), family=family, proto=proto, flags=flags)
        local_infos = None
        if local_addr is not None:
            local_infos = await self._ensure_resolved(local_addr, family=family, proto=proto, flags=flags)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1
        if interleave:
            infos = _interleave_families(infos, interleave)
        exceptions: list[OSError] = []
        try:
            if happy_eyeballs_delay is None:
                for info in infos:
                    try:
                        return await self._connect_one(exceptions, info, local_infos)
                    except OSError:
                        continue
            else:
                from asyncio import staggered

                attempts = [
                    (lambda info=info: self._connect_one(exceptions, info, local_infos)) for info in infos
                ]
                sock, _, _ = await staggered.staggered_race(attempts, happy_eyeballs_delay, loop=self)
                if sock is not None:
                    return sock
            raise _connect_error(host, exceptions, all_errors)
        finally:
            # Each error's traceback holds the frames that hold this list, and the list holds the
            # errors: left filled, every failed connect would leave a reference cycle for the
            # garbage collector (anyio's test_happy_eyeballs_refcycles; CPython gh-124859).
            exceptions.clear()

    async def _connect_one(self, exceptions, info, local_infos):
        family, type_, proto, _, address = info
        sock = None
        try:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            if local_infos is not None:
                for lfamily, _, _, _, laddr in local_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        exceptions.append(OSError(
                            exc.errno, f"error while attempting to bind on address {laddr!r}: "
                            f"{exc.strerror.lower()}"))
                else:
                    if exceptions:
                        raise exceptions.pop()  # the bind error, errno included (EADDRINUSE...)
                    raise OSError(f"no matching local address with family={family} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    async def _make_connection(self, sock, protocol_factory, ssl, server_hostname, server_side,
                               ssl_handshake_timeout, ssl_shutdown_timeout):
        sock.setblocking(False)
        app_protocol = protocol_factory()
        waiter = self.create_future()
        if ssl:
            sslcontext = _default_client_context(server_side, server_hostname) if ssl is True else ssl
            protocol = _ssl_protocol(self, app_protocol, sslcontext, waiter, server_side, server_hostname,
                                     ssl_handshake_timeout, ssl_shutdown_timeout)
            transport = SocketTransport(self, sock, protocol)
            result_transport = protocol._app_transport
        else:
            transport = result_transport = SocketTransport(self, sock, app_protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return result_transport, app_protocol

    async def connect_accepted_socket(self, protocol_factory, sock, *, ssl=None, ssl_handshake_timeout=None,
                                      ssl_shutdown_timeout=None):
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        _check_ssl_args(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        return await self._make_connection(sock, protocol_factory, ssl, None, True,
                                           ssl_handshake_timeout, ssl_shutdown_timeout)

    async def create_unix_connection(self, protocol_factory, path=None, *, ssl=None, sock=None,
                                     server_hostname=None, ssl_handshake_timeout=None,
                                     ssl_shutdown_timeout=None):
        if not _HAS_UNIX:
            raise NotImplementedError("Unix sockets are not available on this platform")
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        _check_ssl_args(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        return await self._make_connection(sock, protocol_factory, ssl, server_hostname, False,
                                           ssl_handshake_timeout, ssl_shutdown_timeout)

    # ------------------------------------------------------------------ servers

    async def create_server(
        self, protocol_factory, host=None, port=None, *, family=socket.AF_UNSPEC, flags=socket.AI_PASSIVE,
        sock=None, backlog=100, ssl=None, reuse_address=None, reuse_port=None, keep_alive=None,
        ssl_handshake_timeout=None, ssl_shutdown_timeout=None, start_serving=True,
    ) -> Server:
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sockets = await self._bind_listeners(host, port, family, flags, reuse_address, reuse_port,
                                                 keep_alive)
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]
        for listener in sockets:
            listener.setblocking(False)
        server = Server(self, sockets, protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout)
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)  # let the listeners register before the caller connects
        return server

    async def _bind_listeners(self, host, port, family, flags, reuse_address, reuse_port, keep_alive):
        hosts = [None] if host is None or host == "" else ([host] if isinstance(host, (str, bytes)) else host)
        infos = []
        for one_host in hosts:
            infos.extend(await self._ensure_resolved((one_host, port), family=family, flags=flags))
        if reuse_address is None:
            reuse_address = os.name == "posix" and sys.platform != "cygwin"
        sockets = []
        try:
            for af, socktype, proto, _, address in dict.fromkeys(infos):
                try:
                    sock = socket.socket(af, socktype, proto)
                except OSError:
                    continue  # e.g. IPv6 resolved but not supported by the kernel
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    if not hasattr(socket, "SO_REUSEPORT"):
                        raise ValueError("reuse_port not supported by socket module")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, True)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    # Without this, a dual-stack v6 listener would clash with the v4 one on the same port.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(address)
                except OSError as err:
                    raise OSError(err.errno, f"error while attempting to bind on address {address!r}: "
                                             f"{err.strerror.lower()}") from None
            if not sockets:
                raise OSError(f"could not bind a listening socket for {host!r}:{port!r}")
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    async def create_unix_server(self, protocol_factory, path=None, *, sock=None, backlog=100, ssl=None,
                                 ssl_handshake_timeout=None, ssl_shutdown_timeout=None, start_serving=True,
                                 cleanup_socket=True) -> Server:
        if not _HAS_UNIX:
            raise NotImplementedError("Unix sockets are not available on this platform")
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        _check_ssl_args(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # A stale socket file from a previous run would make bind() fail: remove it, but
            # never remove a file that is not a socket.
            if path[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        sock.setblocking(False)
        # The file of a socket we bound is ours to remove on close; a socket handed to us was
        # bound by the caller, whose file asyncio removes only from 3.13 (older code, and
        # CPython's older tests, unlink it themselves afterwards).
        cleanup = cleanup_socket and (path is not None or sys.version_info >= (3, 13))
        server = Server(self, [sock], protocol_factory, ssl, backlog, ssl_handshake_timeout,
                        ssl_shutdown_timeout, unix_file=_socket_file(sock) if cleanup else None)
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server

    def _accept_ready(self, server: Server, listener: socket.socket, backlog: int) -> None:
        """The listener is readable: accept up to `backlog` connections, then yield to others."""
        for _ in range(backlog):
            try:
                conn, address = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                # A listener that stays readable but fails to accept would spin the loop:
                # report it and stop accepting on it for a moment.
                reason = "out of system resource" if exc.errno in _ACCEPT_RESOURCE_ERRORS else "failed"
                self.call_exception_handler({
                    "message": f"socket.accept() {reason}", "exception": exc,
                    "socket": asyncio.trsock.TransportSocket(listener)})
                server._pause_listener(listener, ACCEPT_RETRY_DELAY)
                return
            conn.setblocking(False)
            self._serve_connection(server, conn, address)

    def _serve_connection(self, server: Server, conn: socket.socket, address) -> None:
        extra = {"peername": address}
        try:
            protocol = server._protocol_factory()
        except BaseException as exc:
            conn.close()
            self.call_exception_handler({"message": "Error in connection_made callback / protocol factory",
                                         "exception": exc})
            if not isinstance(exc, Exception):
                raise
            return
        if server._ssl_context is not None:
            waiter = self.create_future()
            ssl_protocol = _ssl_protocol(self, protocol, server._ssl_context, waiter, True, None,
                                         server._ssl_handshake_timeout, server._ssl_shutdown_timeout)
            SocketTransport(self, conn, ssl_protocol, extra=extra, server=server)
            # A failed handshake is settled here so it is reported once, as the protocol's
            # connection_lost, and never as "Future exception was never retrieved".
            waiter.add_done_callback(_ignore_handshake_result)
        else:
            SocketTransport(self, conn, protocol, extra=extra, server=server)

    # ------------------------------------------------------------------ TLS upgrade

    async def start_tls(self, transport, protocol, sslcontext, *, server_side=False, server_hostname=None,
                        ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        import ssl as ssl_module

        if not isinstance(sslcontext, ssl_module.SSLContext):
            raise TypeError(f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}")
        # asyncio's marker for transports that can carry TLS: ours, and asyncio's TLS transport
        # itself (TLS inside TLS, as a proxy tunnel does).
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")
        waiter = self.create_future()
        # The app protocol is already connected: it must not see connection_made() twice.
        ssl_protocol = _ssl_protocol(self, protocol, sslcontext, waiter, server_side, server_hostname,
                                     ssl_handshake_timeout, ssl_shutdown_timeout, call_connection_made=False)
        # Swap protocols with reading paused so no byte reaches the wrong one.
        transport.pause_reading()
        transport.set_protocol(ssl_protocol)
        made = self.call_soon(ssl_protocol.connection_made, transport)
        resumed = self.call_soon(transport.resume_reading)
        try:
            await waiter
        except BaseException:
            transport.close()
            made.cancel()
            resumed.cancel()
            raise
        return ssl_protocol._app_transport


def _socket_file(sock: socket.socket):
    """(path, st_dev, st_ino) of the file a Unix listener is bound to, for Server.close() to
    remove; None for an abstract or unbound socket, or a file already gone.

    Closing the server removes the file, as asyncio does from Python 3.13, but only while it is
    still that file, not one another process has bound at the same path since.
    """
    path = sock.getsockname()
    if not isinstance(path, str) or not path or path[0] == "\x00":
        return None  # abstract names come back as bytes; an unbound socket as ""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (path, st.st_dev, st.st_ino)


def _connect_error(host, exceptions: list[OSError], all_errors: bool) -> BaseException:
    """The one error create_connection raises when every address failed."""
    if not exceptions:
        return OSError(f"Multiple exceptions: no address to connect to for {host!r}")
    if all_errors:
        return ExceptionGroup("create_connection failed", list(exceptions))  # noqa: F821 (3.11+)
    if len(exceptions) == 1:
        return exceptions[0]
    first = str(exceptions[0])
    if all(str(exc) == first for exc in exceptions):
        return exceptions[0]
    return OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in exceptions)))


def _interleave_families(infos, first_family_count: int):
    by_family = collections.OrderedDict()
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    lists = list(by_family.values())
    reordered = []
    if first_family_count > 1:
        reordered.extend(lists[0][: first_family_count - 1])
        lists[0] = lists[0][first_family_count - 1:]
    reordered.extend(a for a in itertools.chain.from_iterable(itertools.zip_longest(*lists)) if a is not None)
    return reordered


def _ignore_handshake_result(waiter: asyncio.Future) -> None:
    if not waiter.cancelled():
        waiter.exception()
