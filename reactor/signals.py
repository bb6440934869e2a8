"""Unix signal handlers that run as ordinary reactor callbacks.

A Python signal handler may run between any two bytecodes, so it must not touch the loop.
Instead the C-level handler writes the signal number to a socket (`signal.set_wakeup_fd`),
which the selector watches like any other; reading it, the reactor runs the user's callback
on the next pass. Only the main thread may install signal handlers (a CPython rule).
"""

from __future__ import annotations

import signal
import socket
import threading
from asyncio import events


def _noop_handler(signum, frame) -> None:
    """Installed as the Python-level handler: the work happens in the reactor, not here."""


class SignalHandling:
    """Mixin for the reactor: add_signal_handler / remove_signal_handler."""

    _signal_handlers: dict
    _signal_sockets = None

    def add_signal_handler(self, sig: int, callback, *args) -> None:
        if not hasattr(signal, "set_wakeup_fd") or not hasattr(socket, "socketpair"):
            raise NotImplementedError("signal handlers need signal.set_wakeup_fd")
        if self.__dict__.get("_signal_handlers") is None:
            self._signal_handlers = {}
        # Checked always, not only in debug mode: a coroutine handler would silently never run.
        self._check_callback(callback, "add_signal_handler")
        self._check_closed()
        self._check_signal(sig)
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("add_signal_handler() must be called from the main thread")
        if self._signal_sockets is None:
            self._open_signal_socket()
        self._signal_handlers[sig] = events.Handle(callback, args, self, None)
        try:
            # siginterrupt(False): a signal must not make unrelated system calls fail with EINTR.
            signal.signal(sig, _noop_handler)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                self._close_signal_socket()
            raise RuntimeError(f"sig {sig:d} cannot be caught") from exc

    def remove_signal_handler(self, sig: int) -> bool:
        self._check_signal(sig)
        handlers = self.__dict__.get("_signal_handlers") or {}
        if handlers.pop(sig, None) is None:
            return False
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            raise RuntimeError(f"sig {sig:d} cannot be caught") from exc
        if not handlers:
            self._close_signal_socket()
        return True

    def _check_signal(self, sig) -> None:
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _open_signal_socket(self) -> None:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        try:
            self._previous_wakeup_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            reader.close()
            writer.close()
            raise RuntimeError(str(exc)) from exc
        self._signal_sockets = (reader, writer)
        self._add_reader(reader.fileno(), self._read_signals)

    def _close_signal_socket(self) -> None:
        if self._signal_sockets is None:
            return
        reader, writer = self._signal_sockets
        self._signal_sockets = None
        self._remove_reader(reader.fileno())
        try:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        except (ValueError, OSError):
            pass  # not in the main thread any more (closing from elsewhere): leave it
        reader.close()
        writer.close()

    def _read_signals(self) -> None:
        reader = self._signal_sockets[0]
        while True:
            try:
                data = reader.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                handle = self._signal_handlers.get(signum)
                if handle is None:
                    continue
                if handle.cancelled():
                    self.remove_signal_handler(signum)
                else:
                    self._ready.append(handle)

    def _release_resources(self) -> None:
        self._remove_all_signal_handlers()
        super()._release_resources()

    def _remove_all_signal_handlers(self) -> None:
        for sig in list(self.__dict__.get("_signal_handlers") or ()):
            try:
                self.remove_signal_handler(sig)
            except (RuntimeError, ValueError):
                pass  # closing from a non-main thread: the process-wide handler stays
