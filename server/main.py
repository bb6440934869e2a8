"""``Server``: binds, runs the reactor in its own thread, and shuts down in phases.

Threads: the reactor thread runs the event loop and everything on it (connections, the
app, lifespan). The thread that calls ``run()`` — normally the main thread — owns the
signal handlers and only ever talks to the loop through ``call_soon_threadsafe``.

Shutdown phases (each logged): stop accepting → tell busy connections to close after their
response, give idle ones a moment for a last request, and end event streams (which have no
end of their own) → wait for in-flight requests up to the graceful timeout → cancel what remains and drop
its connections → lifespan shutdown → cancel and await every task the app left running, as
``asyncio.run`` does → close the loop.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import threading
from typing import Any, Callable

from treadle.server._loop import create_loop
from treadle.server.apps.appset import AppSet
from treadle.server.apps.importer import ImportFromStringError
from treadle.server.apps.interface import InterfaceError
from treadle.server.apps.middleware import wrap_runner
from treadle.server.asgi.lifespan import Lifespan
from treadle.server.config import Config
from treadle.server.config.envfile import EnvFileError
from treadle.server.http1.connection import Http1Connection
from treadle.server.http2.connection import Http2Connection
from treadle.server.http2.upgrade import upgrade as h2c_upgrade
from treadle.server.negotiate import Negotiator
from treadle.server.observe.logging import configure_logging, error_logger
from treadle.server.observe.observer import Observer
from treadle.server.process.sockets import bind_sockets, describe, remove_unix_socket
from treadle.server.state import ServerState
from treadle.server.tls import TLSConfigError, server_certificate, server_ssl_context, tls_protocol_factory
from treadle.server.ws_select import websocket_entries

LEFTOVER_TASKS_TIMEOUT = 5.0  # for tasks to finish once cancelled (phases 4 and 6)

EXIT_OK = 0
EXIT_LOAD_ERROR = 1
EXIT_STARTUP_FAILED = 3


class StartupError(Exception):
    """The server could not start; ``exit_code`` says why (1: app/bind, 3: lifespan)."""

    def __init__(self, message: str, exit_code: int = EXIT_LOAD_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Server:
    def __init__(
        self,
        config: Config,
        sockets: list[socket.socket] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``sockets``: listening sockets to serve instead of binding (a supervisor's, gunicorn's);
        ``ssl_context``: the TLS context to serve with instead of building one (a supervisor's)."""
        self.config = config
        self._given_sockets = sockets
        self._ssl_context = ssl_context
        self.loop: asyncio.AbstractEventLoop | None = None
        self.state: ServerState | None = None
        self.observer: Observer | None = None
        self.sockets: list[socket.socket] = []
        self.exit_code = EXIT_OK
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: StartupError | None = None
        self._stop: asyncio.Future | None = None
        self._forced: asyncio.Future | None = None
        # Set by request_shutdown(): None, or whether it was forced. A request that came
        # before _serve() made its futures (a signal during start-up) is honoured from here.
        self._shutdown_requested: bool | None = None
        self._signals = 0
        # Called in the reactor thread when --limit-max-requests is reached, as the server
        # begins to retire (a supervisor starts the replacement then, not after the exit).
        self.on_retire: Callable[[], None] | None = None
        # Count stats even without --stats-port or --stats-interval: a supervisor collects them
        # (server/process/worker_main.py).
        self.collect_stats = False

    # -- public API (any thread) ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        return self.sockets[0].getsockname()[1]

    def start(self) -> None:
        """Load the app, bind, start the reactor thread; return once listening.

        Raises ``StartupError`` if the app cannot be loaded, the address cannot be bound,
        or lifespan startup fails.
        """
        config = self.config
        try:
            apps = AppSet(config)
        except (ImportFromStringError, InterfaceError) as exc:
            raise StartupError(f"Error loading app. {exc}")
        except EnvFileError as exc:
            raise StartupError(str(exc))
        try:
            self._ssl_context = self._ssl_context or server_ssl_context(config)
        except TLSConfigError as exc:
            raise StartupError(str(exc))
        self.sockets = self._given_sockets or bind_sockets(config)
        self.loop = create_loop(config.selector)
        self.state = ServerState(config)
        self.state.server_cert = server_certificate(config.ssl_certfile)
        upgrades = self.state.upgrades
        websockets = websocket_entries(config.ws)
        if websockets is not None:
            upgrades[b"websocket"] = websockets.upgrade
            self.state.websocket_connect = websockets.connect
        if config.http2:
            upgrades[b"h2c"] = h2c_upgrade
        try:
            self.observer = Observer(config, self.loop, self.state, self.collect_stats)  # binds --stats-port
        except OSError:
            self.loop.close()
            for sock in self.sockets:
                sock.close()
            raise
        self.observer.start()
        self._thread = threading.Thread(
            target=self._thread_main, args=(apps,), name="treadle-reactor", daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    def request_shutdown(self, force: bool = False) -> None:
        """Begin graceful shutdown (``force``: do not wait for in-flight requests). Thread-safe."""
        self._shutdown_requested = force or bool(self._shutdown_requested)
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._begin_shutdown, force)
        except RuntimeError:
            pass  # the loop closed meanwhile: already shut down

    def shutdown(self, timeout: float | None = None) -> None:
        """Shut down gracefully and wait for the reactor thread to finish."""
        self.request_shutdown()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, ready: Callable[[], None] | None = None, *, sigint: bool = True) -> int:
        """Serve until SIGTERM (or SIGINT); returns the process exit code. Blocks the caller.

        ``ready`` is called once listening (a supervised worker reports in with it).
        SIGTERM and SIGINT are taken whatever the process inherited: a shell ignores SIGINT
        in the commands a script starts in the background (``sh -c 'treadle app:app &'``),
        and ``kill -INT`` must still stop the server, as it stops uvicorn. ``sigint=False``
        leaves SIGINT as it is: a supervised worker, whose supervisor ignores SIGINT in it
        so that a terminal's Ctrl+C, which reaches the whole process group, is acted on by
        the supervisor alone.
        """
        config = self.config
        configure_logging(config.log_level, config.log_config, config.access_log, config.log_format)
        handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM) if sigint else (signal.SIGTERM,):
                handlers[sig] = signal.signal(sig, self._handle_signal)
        try:
            try:
                self.start()
            except StartupError as exc:
                error_logger.error("%s", exc)
                return exc.exit_code
            except OSError as exc:
                error_logger.error("%s", exc)
                return EXIT_LOAD_ERROR
            if ready is not None:
                ready()
            while self.running:
                self.join(0.5)  # wake regularly so signal handlers run promptly
            return self.exit_code
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    # -- main thread -----------------------------------------------------------------------------

    def _handle_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            error_logger.info("Received %s; shutting down gracefully.", signal.Signals(signum).name)
            self.request_shutdown()
        else:
            error_logger.info("Received %s again; forcing shutdown.", signal.Signals(signum).name)
            self.request_shutdown(force=True)

    # -- reactor thread --------------------------------------------------------------------------

    def _thread_main(self, apps: AppSet) -> None:
        loop = self.loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(apps))
        except BaseException as exc:  # pragma: no cover - a bug in the server itself
            error_logger.critical("Server crashed", exc_info=exc)
            self.exit_code = 1
            if not self._started.is_set():
                self._startup_error = StartupError(f"Server crashed: {exc!r}")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                self.observer.stop()  # the loop has stopped: the trace's last poll is complete
                loop.close()
                asyncio.set_event_loop(None)
                for sock in self.sockets:
                    sock.close()
                self._started.set()

    async def _serve(self, apps: AppSet) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        state = self.state
        assert state is not None
        self._stop = loop.create_future()
        self._forced = loop.create_future()
        if self._shutdown_requested is not None:
            self._begin_shutdown(self._shutdown_requested)

        lifespan = None
        if config.lifespan != "off" and apps.lifespan_app is not None:
            lifespan = Lifespan(apps.lifespan_app, config.lifespan, state.lifespan_state)
            if not await lifespan.startup():
                self._startup_error = StartupError("Application startup failed.", EXIT_STARTUP_FAILED)
                self.exit_code = EXIT_STARTUP_FAILED
                self._started.set()
                return

        runner = wrap_runner(apps.runner(loop, state), config)
        if apps.pool is not None:
            self.observer.pool_statistics = apps.pool.statistics  # the stats endpoint shows the WSGI pool

        def http1() -> Http1Connection:
            return Http1Connection(config, state, runner, loop)

        def http2() -> Http2Connection:
            return Http2Connection(config, state, runner, loop)

        def negotiator() -> Negotiator:
            return Negotiator(http1, http2)

        factory: Callable[[], asyncio.BaseProtocol] = negotiator if config.http2 else http1  # --http2
        if self._ssl_context is not None:
            factory = tls_protocol_factory(factory, self._ssl_context, config.ssl_handshake_timeout, loop)
        servers = [await loop.create_server(factory, sock=sock, backlog=config.backlog) for sock in self.sockets]
        state.on_request_limit = self._retire
        error_logger.info("Serving %s", apps.describe())
        where = ", ".join(describe(sock, "https" if self._ssl_context else "http") for sock in self.sockets)
        error_logger.info("Treadle running on %s (Press CTRL+C to quit)", where)
        self._started.set()

        await self._stop
        # Phase 1: stop accepting.
        for server in servers:
            server.close()
        if self._given_sockets is None:
            remove_unix_socket(config)
        # Phase 2: connections close after their current response (idle ones: after a moment
        # for a request already on its way, server/http1/connection.py's shutdown()).
        state.closing = True
        for conn in list(state.connections):
            conn.shutdown()
        # Phase 3: let in-flight requests finish, up to the graceful timeout. What is waited
        # for is every connection the listeners accepted, as transports: one accepted in the
        # turn shutdown began is made (and shut down, in connection_made) only after phase 2,
        # and one still in its TLS handshake has no HTTP connection yet.
        waits: list[Any] = [loop.create_task(server.wait_closed()) for server in servers]
        waits.append(apps.idle(loop))  # the WSGI workers
        if state.tasks:
            waits.append(loop.create_task(asyncio.wait(list(state.tasks))))
        everything = loop.create_task(asyncio.wait(waits))
        await asyncio.wait(
            [everything, self._forced],
            timeout=config.timeout_graceful_shutdown,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if state.tasks:
            error_logger.warning("Cancelling %d request(s) still running.", len(state.tasks))
        # Phase 4: cancel what remains, drop remaining connections (and handshakes).
        for task in list(state.tasks):
            task.cancel()
        if state.tasks:
            await asyncio.wait(list(state.tasks), timeout=LEFTOVER_TASKS_TIMEOUT)
        for conn in list(state.connections):
            conn.force_close()
        for server in servers:
            server.abort_clients()
        everything.cancel()
        for waiter in waits:
            waiter.cancel()
        # Phase 5: lifespan shutdown.
        if lifespan is not None:
            await lifespan.shutdown()
        apps.close()
        # Phase 6: what the app started and left running (background tasks, a lifespan that
        # never returned) is cancelled and awaited now, so its finally blocks run while the
        # loop and the interpreter are whole, not as "Task was destroyed but it is pending!".
        await _cancel_leftover_tasks(LEFTOVER_TASKS_TIMEOUT)
        error_logger.info("Finished server process.")

    def _retire(self) -> None:
        limit = self.config.limit_max_requests
        error_logger.info("Served %d requests (--limit-max-requests); shutting down gracefully.", limit)
        if self.on_retire is not None:
            self.on_retire()
        self._begin_shutdown(False)

    def _begin_shutdown(self, force: bool) -> None:
        if force and self._forced is not None and not self._forced.done():
            self._forced.set_result(None)  # ends the graceful wait at once
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)


async def _cancel_leftover_tasks(timeout: float) -> None:
    """Cancel every task on the loop but the caller's and wait for them, up to ``timeout``;
    report those that failed (to the loop's exception handler, as ``asyncio.run`` does) and
    those that would not stop."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks(loop) if task is not current]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            message = "unhandled exception in a task cancelled at shutdown"
            loop.call_exception_handler({"message": message, "exception": task.exception(), "task": task})
    if pending:
        error_logger.warning(
            "%d task(s) did not stop within %s s of being cancelled: %s", len(pending), timeout, pending
        )
