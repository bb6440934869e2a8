"""The ``treadle`` command: flags, app loading, logging, signals and exit codes.

Most tests run the CLI in a subprocess (``python -m treadle``), find the port in its log,
talk HTTP to it, then stop it with a signal; the process is always killed in ``finally``.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from treadle.server.cli import build_parser, config_from_args

TESTS = Path(__file__).parent
ROOT = TESTS.parent


class CLI:
    def __init__(self, *args: str, cwd: Path = TESTS, module: bool = True) -> None:
        cmd = [sys.executable, "-m", "treadle", *args] if module else list(args)
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: list[tuple[str, str]] = []
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()
        self.port: int | None = None

    def _pump(self, name, stream) -> None:
        for raw in stream:
            self.lines.put((name, raw.decode(errors="replace").rstrip("\n")))

    def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match:
        deadline = time.monotonic() + timeout
        for _, line in self.seen:
            match = re.search(pattern, line)
            if match:
                return match
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen; output: {self.seen}")
            try:
                item = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(item)
            match = re.search(pattern, item[1])
            if match:
                return match

    def started(self) -> int:
        self.port = int(self.wait_for(r"running on http://[\d.]+:(\d+)").group(1))
        return self.port

    def finish(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0)  # let the pump threads drain what is left
        while True:
            try:
                self.seen.append(self.lines.get(timeout=0.5))
            except queue.Empty:
                break
        return code

    def output(self) -> str:
        return "\n".join(line for _, line in self.seen)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def cli():
    running: list[CLI] = []

    def start(*args: str, **kwargs) -> CLI:
        process = CLI(*args, **kwargs)
        running.append(process)
        return process

    yield start
    for process in running:
        process.kill()


def test_parser_maps_every_flag():
    args = build_parser().parse_args(
        [
            "pkg.mod:app", "--host", "0.0.0.0", "--port", "9000", "--log-level", "debug",
            "--no-access-log", "--root-path", "/api", "--timeout-keep-alive", "7", "--app-dir", "src",
            "--factory", "--lifespan", "on", "--header", "X-A: 1", "--header", "X-B:two:three",
            "--no-server-header", "--no-date-header", "--selector", "poll", "--backlog", "10",
            "--timeout-request-header", "3", "--timeout-graceful-shutdown", "4", "--limit-concurrency", "50",
            "--limit-request-head-size", "8192", "--limit-request-body-size", "1000",
            "--log-config", "log.json",
        ]
    )
    config = config_from_args(args)
    assert config.app == "pkg.mod:app"
    assert (config.host, config.port, config.log_level) == ("0.0.0.0", 9000, "debug")
    assert config.access_log is False
    assert config.root_path == "/api"
    assert config.timeout_keep_alive == 7
    assert (config.app_dir, config.factory, config.lifespan) == ("src", True, "on")
    assert config.headers == [("X-A", "1"), ("X-B", "two:three")]
    assert (config.server_header, config.date_header) == (False, False)
    assert (config.selector, config.backlog) == ("poll", 10)
    assert (config.timeout_request_header, config.timeout_graceful_shutdown) == (3, 4)
    assert config.limit_concurrency == 50
    assert (config.limit_request_head_size, config.limit_request_body_size) == (8192, 1000)
    assert config.log_config == "log.json"


def test_parser_defaults():
    config = config_from_args(build_parser().parse_args([]))
    assert config.app == "treadle.server.apps.demo:app"
    assert (config.host, config.port) == ("127.0.0.1", 8000)
    assert config.timeout_keep_alive == 5.0
    assert config.timeout_request_header == 10.0
    assert config.timeout_graceful_shutdown == 30.0
    assert config.limit_request_head_size == 16384
    assert config.limit_request_body_size == 100 * 1024 * 1024
    assert config.limit_concurrency is None
    assert config.lifespan == "auto"


def test_bad_header_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--header", "novalue"])
    assert info.value.code == 2


def test_demo_app_and_sigint(cli):
    proc = cli("--port", "0")
    port = proc.started()
    r = httpx.get(f"http://127.0.0.1:{port}/some/path?x=1", headers={"X-Demo": "yes"})
    assert r.status_code == 200
    assert "Treadle is running" in r.text and "/some/path" in r.text and "x-demo" in r.text
    proc.wait_for(r'"GET /some/path\?x=1 HTTP/1.1" 200')  # access log
    proc.proc.send_signal(signal.SIGINT)
    assert proc.finish() == 0
    assert "Finished server process" in proc.output()


def test_sigterm_lets_in_flight_request_finish(cli):
    proc = cli("sample_apps:slow", "--port", "0")
    port = proc.started()
    result = {}

    def call():
        result["response"] = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)

    thread = threading.Thread(target=call)
    thread.start()
    proc.wait_for("^entered$")
    proc.proc.send_signal(signal.SIGTERM)
    thread.join(15)
    assert result["response"].text == "done"
    assert proc.finish() == 0


def test_startup_failure_exits_non_zero_with_message(cli):
    proc = cli("sample_apps:failing_startup", "--port", "0")
    assert proc.finish() == 3
    assert "cannot reach the database" in proc.output()


@pytest.mark.parametrize(
    "app,message",
    [
        ("nonexistent_module:app", 'Could not import module "nonexistent_module"'),
        ("sample_apps:missing", 'Attribute "missing" not found'),
        ("sample_apps", "must be in format"),
        ("sample_apps:not_callable", "not callable"),
    ],
)
def test_app_loading_errors_exit_1(cli, app, message):
    proc = cli(app, "--port", "0")
    assert proc.finish() == 1
    assert message in proc.output()


def test_factory_and_app_dir(cli, tmp_path):
    proc = cli("sample_apps:create_app", "--factory", "--app-dir", str(TESTS), "--port", "0", cwd=tmp_path)
    port = proc.started()
    assert httpx.get(f"http://127.0.0.1:{port}/").text == "from factory"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish() == 0


@pytest.mark.parametrize("module", ["server", "reactor", "app", "treadle_app"])
def test_a_users_module_named_like_ours_loads(cli, tmp_path, module):
    """Treadle installs one top-level name, ``treadle``: a user's ``server.py`` (a common name)
    or ``reactor.py`` is theirs to import, not shadowed by the server's own packages."""
    (tmp_path / f"{module}.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        f"    await send({{'type': 'http.response.body', 'body': b'from my {module}.py'}})\n"
    )
    proc = cli(f"{module}:app", "--port", "0", cwd=tmp_path)
    port = proc.started()
    assert httpx.get(f"http://127.0.0.1:{port}/").text == f"from my {module}.py"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish() == 0


def test_no_access_log_and_log_config(cli, tmp_path):
    log_config = tmp_path / "log.json"
    log_config.write_text(json.dumps({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "CUSTOM %(name)s %(message)s"}},
        "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {"treadle": {"handlers": ["h"], "level": "INFO", "propagate": False}},
    }))
    proc = cli("sample_apps:hello", "--port", "0", "--no-access-log", "--log-config", str(log_config))
    port = proc.started()
    assert httpx.get(f"http://127.0.0.1:{port}/x").text == "hello"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish() == 0
    out = proc.output()
    assert "CUSTOM treadle.error" in out
    assert "GET /x" not in out


def test_bind_error_exits_1(cli):
    first = cli("sample_apps:hello", "--port", "0")
    port = first.started()
    second = cli("sample_apps:hello", "--port", str(port))
    assert second.finish() == 1
    assert "ddress already in use" in second.output()
    first.proc.send_signal(signal.SIGTERM)
    assert first.finish() == 0


def test_unknown_selector_is_a_usage_error(cli):
    proc = cli("--selector", "nonsense")
    assert proc.finish() == 2


@pytest.mark.skipif(shutil.which("treadle") is None, reason="package not installed")
def test_console_script(cli):
    proc = cli("treadle", "--help", module=False)
    assert proc.finish() == 0
    assert "--limit-concurrency" in proc.output()
    assert "Serve an ASGI or WSGI application" in proc.output()


@pytest.mark.parametrize(
    "app, said",
    [
        ("sample_apps:hello", r"Serving sample_apps:hello \(ASGI 3\)"),
        ("wsgi_apps:hello", r"Serving wsgi_apps:hello \(WSGI, 3 threads, queue 1024\)"),
    ],
)
def test_the_start_up_log_says_which_interface_serves_the_app(cli, app, said):
    proc = cli(app, "--port", "0", "--threads", "3", "--lifespan", "off")
    proc.wait_for(said)
    proc.started()
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish() == 0


def test_programmatic_run_and_python_dash_m(cli):
    code = "import treadle; raise SystemExit(treadle.run('sample_apps:hello', port=0, lifespan='off'))"
    proc = cli(sys.executable, "-c", code, module=False)
    port = proc.started()
    assert httpx.get(f"http://127.0.0.1:{port}/").text == "hello"
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.finish() == 0


def test_second_signal_forces_shutdown(cli):
    proc = cli("sample_apps:hang", "--port", "0", "--timeout-graceful-shutdown", "600")
    port = proc.started()
    outcome = []

    def call():
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=call, daemon=True)
    client.start()
    proc.wait_for("^entered$")
    proc.proc.send_signal(signal.SIGTERM)
    proc.wait_for("shutting down gracefully")
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGINT)
    assert proc.finish(timeout=20) == 0
    assert time.monotonic() - started < 15
    assert "forcing shutdown" in proc.output()
    client.join(10)
    assert isinstance(outcome[0], httpx.RemoteProtocolError)  # cut off, never answered
