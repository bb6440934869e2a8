"""Fixtures for the server tests: a real server on 127.0.0.1 port 0 in a background thread,
and a small raw-socket HTTP client for byte-exact assertions.

Nothing here sleeps in hope: waits are on conditions, each with a deadline.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from treadle.server import Config, Server
from treadle.server.config import HTTP_ENGINES


def _fix_pypy_thread_join_race() -> None:
    """Backport PyPy's fix for a race in Thread.join()/is_alive() (pypy/pypy#5079, PR #5080).

    Two threads that wait for one thread's end at once (a join() and an is_alive(), say) can both
    acquire its _tstate_lock; the slower one's release() then raises "cannot release un-acquired
    lock". The clients the tests use (websockets' sync client) join and poll their own threads
    like that, and PyPy before the fix (Debian's 7.3.11) fails them now and then. CPython 3.13
    replaced this code altogether; PyPy's fix ignores the redundant release, as done here.
    """
    if sys.implementation.name != "pypy":
        return
    thread = threading.Thread
    if "RuntimeError" in inspect.getsource(thread._wait_for_tstate_lock):
        return  # this PyPy has the fix

    def _wait_for_tstate_lock(self, block=True, timeout=-1):
        lock = self._tstate_lock
        if lock is None:
            return  # already stopped
        try:
            if lock.acquire(block, timeout):
                with contextlib.suppress(RuntimeError):
                    lock.release()
                self._stop()
        except BaseException:
            if lock.locked():  # acquired, then interrupted before the release (bpo-45274)
                with contextlib.suppress(RuntimeError):
                    lock.release()
                self._stop()
            raise

    def _stop(self):
        # As upstream's, minus its assertion that the lock is free: a racing waiter may hold it.
        self._is_stopped = True
        self._tstate_lock = None
        if not self.daemon:
            with threading._shutdown_locks_lock:
                threading._maintain_shutdown_locks()

    thread._wait_for_tstate_lock = _wait_for_tstate_lock
    thread._stop = _stop


_fix_pypy_thread_join_race()


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.005) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


class RunningServer:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = server.port
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Any:
        return self.server.state

    def connect(self, timeout: float = 5.0) -> RawClient:
        return RawClient(self.port, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.shutdown(timeout)
        assert not self.server.running, "server thread did not stop"


@pytest.fixture(autouse=True)
def no_leftover_server_threads() -> Iterator[None]:
    """Every test must stop the servers it started: no reactor thread may outlive it."""
    yield
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "treadle-reactor"], timeout=10)


@pytest.fixture(scope="session")
def ca() -> Any:
    """A throwaway certificate authority (trustme) for the TLS tests."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def certs(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Certificate files for 127.0.0.1 issued by ``ca`` (see tests/tls_support.py)."""
    from tls_support import write_certs

    return write_certs(ca, tmp_path_factory.mktemp("certs"))


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    """A list to put started processes in (tests/prod_support.py's ``Proc``): each one's whole
    process group is killed at teardown, whatever the test did."""
    started: list[Any] = []
    yield started
    for proc in started:
        proc.kill_group()


@pytest.fixture(params=HTTP_ENGINES)
def http_engine(request: pytest.FixtureRequest) -> str:
    """Every test that starts a server runs once per HTTP/1.1 engine (--http h11 and fast)."""
    return request.param


@pytest.fixture
def serve(http_engine: str) -> Iterator[Callable[..., RunningServer]]:
    """``serve(app, **config_options)`` starts a server; all are stopped at teardown."""
    yield from _servers(http_engine)


@pytest.fixture
def serve_once() -> Iterator[Callable[..., RunningServer]]:
    """``serve``, once (with the default HTTP/1.1 engine): for tests the engine does not touch,
    as HTTP/2's."""
    yield from _servers("fast")


def _servers(http_engine: str) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def start(app: Any, **options: Any) -> RunningServer:
        options.setdefault("port", 0)
        options.setdefault("lifespan", "off")
        options.setdefault("http", http_engine)
        server = Server(Config(app, **options))
        server.start()
        running = RunningServer(server)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


class Response:
    def __init__(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        trailers: list[tuple[bytes, bytes]],
        http_version: bytes,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.trailers = trailers
        self.http_version = http_version

    def header(self, name: bytes) -> bytes | None:
        values = self.header_list(name)
        return values[0] if values else None

    def header_list(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def chunked(self) -> bool:
        return self.header(b"transfer-encoding") == b"chunked"


class RawClient:
    """A blocking socket with just enough HTTP/1.1 response parsing for tests."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before {marker!r}; have {self.buffer!r}")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ConnectionError(f"closed with {len(self.buffer)} of {n} bytes")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        head = self._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, status, reason = (lines[0].split(b" ", 2) + [b""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
        return int(status), reason, headers, version

    def read_response(self, head_request: bool = False) -> Response:
        while True:
            status, reason, headers, version = self.read_head()
            if status >= 200:
                break  # skip 1xx interim responses
        resp = Response(status, reason, headers, b"", [], version)
        if head_request or status in (204, 304):
            return resp
        if resp.chunked:
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    break
                body += self._read_exact(size)
                assert self._read_exact(2) == b"\r\n"
            while True:  # trailer section, ended by an empty line
                line = self._read_until(b"\r\n")
                if not line:
                    break
                name, _, value = line.partition(b":")
                resp.trailers.append((name.strip().lower(), value.strip()))
            resp.body = body
        elif resp.header(b"content-length") is not None:
            resp.body = self._read_exact(int(resp.header(b"content-length")))
        else:
            resp.body = self.read_until_close()
        return resp

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True once the server closed the connection (EOF or reset), within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buffer += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def assert_refused(srv: RunningServer, raw: bytes, status: int) -> None:
    """``raw`` is answered with ``status`` and ``Connection: close``, the connection is closed,
    and the server goes on serving other connections."""
    with srv.connect() as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == status
        assert resp.header(b"connection") == b"close"
        assert c.is_closed()
    with srv.connect() as c:
        c.send(request())
        assert c.read_response().status == 200


def request(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    """Render a request; adds Host, and Content-Length when there is a body."""
    lines = [f"{method} {target} HTTP/{version}", "Host: test"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers or []):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- small ASGI apps used across test files ---------------------------------------------------


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message["body"]
        if not message.get("more_body"):
            return body


def text_app(text: bytes = b"hello", status: int = 200, extra: list | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(receive)
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
        await send({"type": "http.response.body", "body": text})

    return app


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Echoes the request body, streamed back chunk by chunk (chunked framing)."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b""})


class Recorder:
    """An app wrapper that records scopes and lets a test observe the app's progress."""

    def __init__(self, app: Any = None) -> None:
        self.app = app or text_app()
        self.scopes: list[Any] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with self.lock:
            self.scopes.append(scope)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            with self.lock:
                self.errors.append(exc)
            raise


@contextlib.contextmanager
def closing_socket(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        yield sock
    finally:
        sock.close()


class Gate:
    """An app waits at ``await gate.wait()`` until the test calls ``gate.open()``, from its own
    thread. The asyncio event is made on the server's loop at the first wait (before Python
    3.10, one made in the test's thread would belong to another loop)."""

    def __init__(self) -> None:
        self._event: Any = None
        self._loop: Any = None
        self._opened = threading.Event()

    async def wait(self) -> None:
        import asyncio

        if self._event is None:
            self._loop = asyncio.get_running_loop()
            self._event = asyncio.Event()
            if self._opened.is_set():
                self._event.set()
        await self._event.wait()

    def open(self) -> None:
        self._opened.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._event.set)
