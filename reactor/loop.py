"""`Reactor`: the complete event loop, assembled from one part per concern.

    CoreLoop        ready queue, timers, selector dispatch, executor, errors  (core.py)
    SocketOps       sock_recv / sock_sendall / sock_accept / ...             (sockops.py)
    Networking      getaddrinfo, create_connection/server, TLS               (network.py)
                    loop.sendfile over a transport                           (sendfile.py)
    SignalHandling  add_signal_handler                                      (signals.py)
    Pipes           connect_read_pipe / connect_write_pipe                   (pipes.py)
    Subprocesses    subprocess_exec / subprocess_shell                       (subprocess.py)
    Datagrams       create_datagram_endpoint                                 (datagram.py)
    Introspection   enable_stats() / enable_trace(): watch the loop work     (introspect.py)
"""

from __future__ import annotations

from .core import CoreLoop
from .datagram import Datagrams
from .introspect import Introspection
from .network import Networking
from .pipes import Pipes
from .sendfile import FileSending
from .signals import SignalHandling
from .sockops import SocketOps
from .subprocess import Subprocesses


class Reactor(
    Introspection, SignalHandling, Networking, FileSending, SocketOps, Pipes, Subprocesses, Datagrams, CoreLoop
):
    """An asyncio event loop built on `selectors`, written to be read.

    `Reactor(selector="epoll")` picks the readiness backend by name ("epoll", "kqueue",
    "devpoll", "poll" or "select"); the default is the best this OS offers.
    """
