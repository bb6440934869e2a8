"""Headless Chromium, driven over the DevTools protocol: the stats dashboard's test
(tests/test_dashboard_browser.py) and its screenshot for the docs (loadtests/dashboard_screenshot.py).

``Browser`` starts Chromium (Debian's ``chromium``) in its own process group with a fresh
profile and ``--remote-debugging-port=0``, reads the port it chose from the profile's
``DevToolsActivePort``, and talks to its first page over a WebSocket (the ``websockets``
package): ``navigate``, ``evaluate`` (a JavaScript expression, its value returned as
JSON), ``screenshot``. ``close`` kills the whole group, so no renderer or GPU process is
left behind. Every wait has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

FLAGS = (
    "--headless",
    "--no-sandbox",  # as root, in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",  # containers' /dev/shm is often 64 MiB
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(
        self, binary: str, profile: Path, width: int = 1280, height: int = 1000, flags: tuple[str, ...] = ()
    ) -> None:
        self.proc = subprocess.Popen(
            [binary, *FLAGS, *flags, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        self._open = contextlib.ExitStack()
        try:
            port = self._devtools_port(profile / "DevToolsActivePort", deadline=time.monotonic() + 30)
            url = self._page_url(port, deadline=time.monotonic() + 10)
            self.ws = self._open.enter_context(connect(url, max_size=None, open_timeout=10))
        except BaseException:
            self._kill()
            raise

    def _devtools_port(self, path: Path, deadline: float) -> int:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.proc.returncode}")
            if path.exists():
                first = path.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port in time")

    def _page_url(self, port: int, deadline: float) -> str:
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise TimeoutError("chromium has no page to drive")
            time.sleep(0.05)

    def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are skipped)."""
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise), as JSON gives it."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """The expression's value once it is truthy (polled; a deadline, not a hope)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression} still falsy after {timeout} s")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        try:
            self._open.close()
        finally:
            self._kill()

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)
