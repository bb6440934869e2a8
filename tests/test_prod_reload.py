"""--reload: file filters, the polling watcher, and a supervisor that restarts the worker
when a source file changes (with watchfiles, and with the polling fallback)."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from conftest import wait_until
from prod_support import Proc

from treadle.server.process.reload import FileFilter, PollingWatcher

APP = """
import os
VERSION = {version!r}

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = VERSION.encode()
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}})
    await send({{"type": "http.response.body", "body": body}})
"""


def write_app(directory, version: str) -> None:
    path = directory / "reload_app.py"
    path.write_text(APP.format(version=version))
    later = time.time() + 1  # a distinct mtime even on coarse-grained filesystems
    os.utime(path, (later, later))


def test_file_filter_defaults_and_options():
    default = FileFilter()
    assert default("pkg/module.py")
    assert not default("pkg/module.pyc")
    assert not default(".git/hooks/x.py")
    assert not default("pkg/__pycache__/m.py")
    assert not default("notes.txt")
    custom = FileFilter(includes=["*.toml"], excludes=["migrations"])
    assert custom("settings.toml")
    assert not custom("app/migrations/0001.py")


def test_polling_watcher_sees_changes_creations_and_deletions(tmp_path):
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "data.txt").write_text("ignored\n")
    watcher = PollingWatcher([str(tmp_path)], FileFilter())
    assert watcher.changes() == set()
    later = time.time() + 5
    os.utime(tmp_path / "a.py", (later, later))
    os.utime(tmp_path / "data.txt", (later, later))
    assert watcher.changes() == {str(tmp_path / "a.py")}
    (tmp_path / "b.py").write_text("b = 2\n")
    (tmp_path / "a.py").unlink()
    assert watcher.changes() == {str(tmp_path / "a.py"), str(tmp_path / "b.py")}
    assert watcher.changes() == set()


@pytest.mark.parametrize("kind", ["watchfiles", "polling"])
def test_reload_restarts_the_worker_on_change(tmp_path, kind):
    if kind == "watchfiles":
        pytest.importorskip("watchfiles")
    code = tmp_path / "code"
    code.mkdir()
    write_app(code, "one")
    path_first = []
    if kind == "polling":
        shim = tmp_path / "shim"
        shim.mkdir()
        (shim / "watchfiles.py").write_text("raise ImportError('hidden by the test')\n")
        path_first.append(str(shim))
    proc = Proc.treadle(
        "reload_app:app",
        *("--port", "0", "--reload", "--reload-dir", str(code), "--app-dir", str(code)),
        cwd=tmp_path,
        path_first=path_first,
    )
    try:
        proc.wait_for(rf"Watching .* for changes \({kind}\)")
        port = proc.port()
        url = f"http://127.0.0.1:{port}/"
        assert get_text(url) == "one"
        proc.wait_for(r"Worker \[\d+\] ready")
        write_app(code, "two")
        proc.wait_for(r"Detected changes in .*reload_app\.py; reloading\.")
        proc.wait_for(r"Reload complete")
        # An old worker told to stop may still take a connection that was queued before it
        # closed its listener, and answer it with the old code: the new code comes at once after.
        wait_until(lambda: get_text(url) == "two")
        # A broken edit keeps the old worker serving; the fix is picked up.
        (code / "reload_app.py").write_text("this is not python\n")
        proc.wait_for(r"Reload abandoned: the old workers keep serving\.")
        assert get_text(url) == "two"
        mark = len(proc.seen)
        write_app(code, "three")
        proc.wait_for(r"Reload complete", after=mark)
        wait_until(lambda: get_text(url) == "three")
    finally:
        proc.kill_group()


def get_text(url: str) -> str:
    return httpx.get(url, headers={"Connection": "close"}, timeout=5).text
