"""One WSGI request on the worker pool: the ``WsgiCycle`` (``WsgiRunner`` starts one per request).

A cycle has two halves, grouped below by the thread that runs them (waitress's lesson):
the reactor half is what the connection sees (``feed_body``, ``disconnect``, the
``response_state`` it reads), the worker half runs the app (``run``, ``start_response``,
``write``). They meet in a small hand-off guarded by one lock: the worker appends
response pieces and schedules one ``_flush`` on the loop if none is pending; the reactor
takes everything queued and writes it through the connection's ``Channel``, exactly as
an ASGI cycle would. See docs/wsgi.md for the picture.

Discussion — the common case costs one cross-thread call. An app returning a list of
bytes (or any iterable yielding one chunk) hands status, headers and the whole body to
the reactor in a single post to the loop's ``Inbox``; the reactor adds ``Content-Length``
and the connection writes head and body with one ``transport.write``. Later pieces
coalesce: while a flush is pending, the worker only appends.

Backpressure: the worker blocks while more than ``HIGH_WATER`` bytes it handed over are
not yet written, or while the connection's write buffer is above its own high-water mark
(``send_body`` returned a waiter); the reactor wakes it as the client reads. A client that
leaves wakes it too, and its next ``write()`` or iteration step raises
``ClientDisconnected``, so the app's iterable is closed instead of running on.
"""

from __future__ import annotations

import re
import threading
from enum import IntEnum
from typing import Any, Iterable

from treadle.server.exchange import Channel, ClientDisconnected, ResponseState
from treadle.server.observe.logging import error_logger
from treadle.server.types import Scope
from treadle.server.wsgi.environ import build_environ
from treadle.server.wsgi.file_wrapper import FileWrapper
from treadle.server.wsgi.input import WsgiInput

HIGH_WATER = 64 * 1024  # bytes handed to the reactor and not yet written, before write() blocks

START, BODY, TRAILERS, DONE = ResponseState


class WorkerEnd(IntEnum):
    """How the worker ended the request it ran (or that it has not yet)."""

    MORE = 0  # still producing: more of the response may follow
    COMPLETE = 1  # the app returned and its iterable is closed: the response is whole
    FAILED = 2  # the app raised: a 500, or a response cut short
    GONE = 3  # the client left (or the server stopped the worker): nothing more to send


_MORE, _COMPLETE, _FAILED, _GONE = WorkerEnd
_status_line = re.compile(r"([2-5][0-9][0-9]) [^\r\n\x00]*").fullmatch

# The (str, str) header tuples an app sends on every response, checked and encoded once:
# the connection then finds the encoded pair among the field lines it has rendered before
# (server/http1/connection.py). Bounded, as apps may send unique values (cookies, etags).
_ENCODED: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_MAX_ENCODED = 512


def _encode_header(header: Any) -> tuple[bytes, bytes]:
    """A WSGI header as the (name, value) bytes the connection takes; TypeError or
    ValueError saying what is wrong with it."""
    if type(header) is not tuple or len(header) != 2:
        raise TypeError(f"Invalid WSGI header {header!r}: expected a (name, value) tuple.")
    name, value = header
    if type(name) is not str or type(value) is not str:
        raise TypeError(f"WSGI header names and values must be str, got {header!r}.")
    try:
        pair = (name.encode("latin-1"), value.encode("latin-1"))
    except UnicodeEncodeError:
        raise ValueError(f"WSGI header {header!r} is not latin-1 (PEP 3333 requires it).")
    if len(_ENCODED) < _MAX_ENCODED and name.lower() != "content-length":
        _ENCODED[header] = pair
    return pair


class WsgiCycle:
    __slots__ = (
        "runner",
        "app",
        "loop",
        "inbox",
        "scope",
        "channel",
        "input",
        "response_state",
        "disconnected",
        # worker only
        "_status",
        "_headers",
        "_has_length",
        "_headers_sent",
        # the hand-off, guarded by _lock
        "_lock",
        "_cond",
        "_head",
        "_out",
        "_out_size",
        "_file",
        "_file_task",
        "_end",
        "_scheduled",
        "_paused",
        "_gone",
    )

    def __init__(self, runner: Any, scope: Scope, channel: Channel) -> None:
        self.runner = runner
        self.app = runner.app
        self.inbox = runner.inbox
        self.loop = runner.inbox.loop
        self.scope = scope
        self.channel = channel
        self.input = WsgiInput(self._ask_for_body)
        self.response_state = START  # as applied to the channel (the connection reads it)
        self.disconnected = False
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._has_length = False
        self._headers_sent = False
        self._lock = threading.Lock()
        self._cond: threading.Condition | None = None  # made when the worker first has to wait
        self._head: tuple[int, list[tuple[bytes, bytes]]] | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        self._file: tuple[Any, int, int] | None = None  # (file, offset, count) until it is sent
        self._file_task: Any = None  # the reactor's sendfile, while it runs
        self._end = _MORE
        self._scheduled = False
        self._paused = False  # the connection's write buffer is above its high-water mark
        self._gone = False  # the client left or the response was refused: stop producing

    # -- runs in the reactor: what the connection calls -----------------------------------------

    def begin(self) -> None:
        self.runner.enqueue(self)

    @property
    def body_size(self) -> int:
        return self.input.buffered

    def feed_body(self, data: bytes) -> int:
        return self.input.feed(data)

    def end_body(self) -> None:
        self.input.end()

    def disconnect(self) -> None:
        self.disconnected = True
        self.input.disconnect()
        self._stop_worker()
        if self._file_task is not None:
            self._file_task.cancel()  # os.sendfile would otherwise wait on a closed socket

    def end_stream(self) -> None:
        """The server ends this response (an event stream, at shutdown): the worker's next
        ``write()`` raises ``ClientDisconnected`` (a thread cannot be cancelled)."""
        self.disconnect()

    def reject_busy(self) -> None:
        error_logger.warning("Every WSGI worker is busy and the wait queue is full: answering 503.")
        self.channel.send_error_response(self, 503)
        self._done()

    # -- runs in the reactor: applying what the worker handed over -------------------------------

    def _want_body(self) -> None:
        if not self.disconnected:
            self.channel.want_body(self)

    def _flush(self) -> None:
        with self._lock:
            head, self._head = self._head, None
            out, self._out = self._out, []
            file = self._file if self._file_task is None else None
            end = self._end
            self._scheduled = False
        size = 0
        waiter = None
        try:
            if head is not None and not self.disconnected:
                self._start(head, out, end)
            if (out or file or end == _COMPLETE) and self.response_state == BODY:
                size = len(out[0]) if len(out) == 1 else sum(map(len, out))
                data = out[0] if len(out) == 1 else b"".join(out)
                more = end != _COMPLETE or file is not None
                waiter = self.channel.send_body(self, data, more)
                if file is not None:
                    waiter = self._file_task = self.loop.create_task(self.channel.send_file(self, *file))
                    waiter.add_done_callback(self._file_sent)
                elif not more:
                    self.response_state = DONE
        except RuntimeError:
            # The connection refused the body (its length disagrees with Content-Length):
            # it has logged why and answered 500 or closed. The worker must stop.
            self._stop_worker()
        except Exception as exc:  # a server bug: never leave the worker waiting forever
            error_logger.critical("Failed to send a WSGI response", exc_info=exc)
            with self._lock:
                self._file = None
            self._stop_worker()
            self.channel.abort(self)
        with self._lock:
            self._out_size -= size
            if waiter is not None and not waiter.done():
                self._paused = True
                waiter.add_done_callback(self._drained)
            self._wake()
        if end != _MORE:
            self._finish(end)

    def _start(
        self, head: tuple[int, list[tuple[bytes, bytes]]], out: list[bytes], end: int
    ) -> None:
        status, headers = head
        if end == _COMPLETE and not self._has_length and status != 204 and status != 304:
            # The whole body is here: say how long it is rather than chunk it.
            length = sum(map(len, out))
            headers = [*headers, (b"content-length", b"%d" % length)]
        try:
            self.channel.start_response(self, status, headers, False)
        except RuntimeError as exc:
            error_logger.error("Invalid response from WSGI application %r: %s Sending 500 instead.", self.app, exc)
            self.channel.send_error_response(self, 500)
            self._stop_worker()
            return
        self.response_state = BODY

    def _file_sent(self, task: Any) -> None:
        # The worker waits for this before it closes the file, whatever happened.
        exc = None if task.cancelled() else task.exception()
        if task.cancelled() or exc is not None:
            if exc is not None and not isinstance(exc, OSError):
                error_logger.error("Sending a wsgi.file_wrapper file failed", exc_info=exc)
            self._stop_worker()
            self.channel.abort(self)
        with self._lock:
            self._file = None
            self._file_task = None
            self._wake()

    def _drained(self, waiter: Any) -> None:
        with self._lock:
            self._paused = False
            self._wake()

    def _finish(self, end: int) -> None:
        """The worker is done with the request (the app's iterable is closed)."""
        if end == _FAILED and not self.disconnected:
            if self.response_state == START:
                self.channel.send_error_response(self, 500)
            elif self.response_state != DONE:
                self.channel.abort(self)
        self._done()

    def _done(self) -> None:
        self.input.release()
        self.channel.cycle_done(self)

    def _wake(self) -> None:
        # Called with the lock held.
        if self._cond is not None:
            self._cond.notify()

    def _stop_worker(self) -> None:
        with self._lock:
            self._gone = True
            self._wake()

    # -- runs in a worker ------------------------------------------------------------------------

    def run(self) -> None:
        """Call the app and produce its response; never raises."""
        result = None
        body = b""
        end = _COMPLETE
        try:
            environ = build_environ(self.scope, self.input, FileWrapper)
            result = self.app(environ, self.start_response)
            body = self._respond(result)
            if not self._status:
                raise RuntimeError("The WSGI application returned without calling start_response().")
        except BaseException as exc:
            if self.disconnected or isinstance(exc, ClientDisconnected):
                # As for ASGI apps (asgi_http.RequestCycle.run): what the app raises once the
                # client has gone follows the client's leaving, and is not the app's error.
                error_logger.debug("The WSGI app raised after the client disconnected: %r", exc)
                end = _GONE
            else:
                error_logger.error("Exception in WSGI application %r", self.app, exc_info=exc)
                end = _FAILED
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    if end == _GONE:
                        error_logger.debug("Closing the WSGI iterable after the client left raised: %r", exc)
                    else:
                        error_logger.error("Exception closing the iterable of WSGI app %r", self.app, exc_info=exc)
                    if end == _COMPLETE and not self._headers_sent:
                        end = _FAILED
        try:
            self._hand_over(body if end == _COMPLETE else b"", end)
        except ClientDisconnected:
            pass  # the loop has closed: there is nobody left to tell

    def _respond(self, result: Iterable[bytes]) -> bytes:
        """Send what the app returned; returns the body still to send with the end (the common case)."""
        kind = type(result)
        if (kind is list or kind is tuple) and not self._headers_sent:
            return b"".join(result)  # a non-bytes item raises TypeError here
        if kind is FileWrapper and not self._headers_sent:
            file_range = result.file_range()
            if file_range is not None:
                self._send_file(result.filelike, *file_range)
                return b""
        for chunk in result:
            if chunk:
                self.write(chunk)
            elif type(chunk) is not bytes:
                raise TypeError(f"WSGI iterables must yield bytes, not {type(chunk).__name__}")
            elif self._gone:
                raise ClientDisconnected("The client disconnected.")
        return b""

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None:
            try:
                if self._headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle (PEP 3333)
        elif self._status:
            raise RuntimeError("start_response() called again without exc_info.")
        if type(status) is not str or _status_line(status) is None:
            raise ValueError(f"Invalid WSGI status {status!r}: expected a str like '200 OK' with a code in 200..599.")
        if type(headers) is not list:
            raise TypeError(f"WSGI response headers must be a list, not {type(headers).__name__}.")
        encoded = []
        has_length = False
        known = _ENCODED.get
        for header in headers:
            try:
                pair = known(header)
            except TypeError:  # unhashable, so not a valid header: _encode_header says why
                pair = None
            if pair is None:  # (a Content-Length is never among the known)
                pair = _encode_header(header)
                has_length = has_length or pair[0].lower() == b"content-length"
            encoded.append(pair)
        self._status = int(status[:3])
        self._headers = encoded
        self._has_length = has_length
        return self.write

    def write(self, data: bytes) -> None:
        """The ``write()`` callable returned by ``start_response`` (and how iterables are sent)."""
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"WSGI response body must be bytes, not {type(data).__name__}.")
            data = bytes(data)
        if not self._status:
            raise RuntimeError("write() called before start_response().")
        if data:
            self._hand_over(data, _MORE)

    def _send_file(self, file: Any, offset: int, count: int) -> None:
        if not self._has_length:
            self._headers.append((b"content-length", b"%d" % count))
            self._has_length = True
        self._hand_over(b"", _MORE, (file, offset, count))

    def _hand_over(self, data: bytes, end: int, file: Any = None) -> None:
        """Queue a piece of the response for the reactor; block while the client is behind.

        ``end`` other than ``_MORE``: the worker is finished (the iterable is closed) and
        ``data`` is the last piece; the reactor completes, or fails, the response.
        """
        head = None
        if not self._headers_sent and (data or file is not None or end == _COMPLETE):
            self._headers_sent = True
            head = (self._status, self._headers)
        with self._lock:
            if self._gone and end == _MORE:
                raise ClientDisconnected("The client disconnected.")
            if head is not None:
                self._head = head
            if data:
                self._out.append(data)
                self._out_size += len(data)
            if file is not None:
                self._file = file
            self._end = end
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            try:
                self.inbox.post(self._flush)
            except RuntimeError:  # the loop has closed: the server is gone
                raise ClientDisconnected("The server shut down.")
        if end != _MORE:
            return
        with self._lock:
            # A file being sent must stay open even if the client left: wait for the reactor.
            while self._file is not None or (not self._gone and (self._paused or self._out_size > HIGH_WATER)):
                if self._cond is None:
                    self._cond = threading.Condition(self._lock)
                self._cond.wait()
            if self._gone:
                raise ClientDisconnected("The client disconnected.")

    def _ask_for_body(self) -> None:
        try:
            self.inbox.post(self._want_body)
        except RuntimeError:
            pass  # the loop has closed; the read fails on the disconnect that follows
