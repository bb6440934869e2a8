"""WebSocket echo: each user holds one connection and times every message's round trip.

Locust has no WebSocket client, so this is a custom ``User``: it reports each round trip
through ``events.request`` like an HTTP request, and so gets the same statistics, failures,
CSV and HTML report.
"""

from __future__ import annotations

import os
import time

from locust import User, task
from websockets.sync.client import connect

MESSAGE_SIZE = 1024


class WebSocketEchoUser(User):
    def on_start(self) -> None:
        url = self.host.replace("http://", "ws://", 1) + "/echo"
        started = time.perf_counter()
        try:
            self.ws = connect(url, open_timeout=10, close_timeout=2)
        except Exception as exc:
            self.ws = None
            self._report("CONNECT", "/echo", started, 0, exc)
            raise
        self._report("CONNECT", "/echo", started, 0, None)

    def on_stop(self) -> None:
        if self.ws is not None:
            self.ws.close()

    @task
    def echo(self) -> None:
        if self.ws is None:
            return
        payload = os.urandom(MESSAGE_SIZE)
        started = time.perf_counter()
        error = None
        try:
            self.ws.send(payload)
            if self.ws.recv(timeout=10) != payload:
                error = AssertionError("the echo differs from the message sent")
        except Exception as exc:
            error = exc
        self._report("WS", "echo 1KiB", started, len(payload), error)

    def _report(self, kind: str, name: str, started: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=error,
            context={},
        )
