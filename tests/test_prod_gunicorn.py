"""gunicorn running ``server.workers.TreadleWorker``: serving, max-requests recycling,
graceful stop, and the heartbeat that keeps gunicorn's --timeout from killing a healthy worker."""

from __future__ import annotations

import signal
import ssl
import sys
import threading

import httpx
import pytest
from prod_support import Proc, get_json

pytest.importorskip("gunicorn")


def gunicorn(tmp_path, *args: str) -> tuple[Proc, int]:
    from gunicorn.config import Config as GunicornConfig

    if "control_socket" in GunicornConfig().settings:  # gunicorn 24+: keep it out of ~/.gunicorn
        args = ("--control-socket", str(tmp_path / "gunicorn.ctl"), *args)
    command = [sys.executable, "-m", "gunicorn", "-k", "treadle.workers.TreadleWorker", "-b", "127.0.0.1:0"]
    proc = Proc([*command, *args, "prod_apps:info"])
    proc.wait_for(r"Treadle running on http://127\.0\.0\.1:\d+")
    return proc, int(proc.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1))


def test_gunicorn_runs_the_worker_class_and_recycles_it(tmp_path):
    proc, port = gunicorn(tmp_path, "--workers", "1", "--max-requests", "2")
    try:
        url = f"http://127.0.0.1:{port}/"
        first = get_json(url, headers={"Connection": "close"})["pid"]
        assert get_json(url, headers={"Connection": "close"})["pid"] == first
        proc.wait_for(r"Served 2 requests \(--limit-max-requests\)")
        assert get_json(url, headers={"Connection": "close"})["pid"] != first
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
    finally:
        proc.kill_group()


def test_gunicorn_graceful_stop_finishes_requests_and_heartbeat_keeps_worker(tmp_path):
    # --timeout 1: without a heartbeat from the loop, gunicorn would kill the worker during the 2 s.
    proc, port = gunicorn(tmp_path, "--workers", "1", "--timeout", "1", "--graceful-timeout", "10")
    try:
        url = f"http://127.0.0.1:{port}/"
        responses: list[httpx.Response] = []
        request = threading.Thread(target=lambda: responses.append(httpx.get(url + "?sleep=2", timeout=10)))
        request.start()
        proc.wait_for(r"entered \d+")
        request.join(10)  # 2 s, twice gunicorn's --timeout
        assert responses and responses[0].status_code == 200
        assert "WORKER TIMEOUT" not in proc.output()
        request = threading.Thread(target=lambda: responses.append(httpx.get(url + "?sleep=1", timeout=10)))
        request.start()
        mark = len(proc.seen)
        proc.wait_for(r"entered \d+", after=mark)
        proc.signal(signal.SIGTERM)
        request.join(10)
        assert len(responses) == 2 and responses[1].status_code == 200
        assert proc.finish() == 0
    finally:
        proc.kill_group()


def test_gunicorn_replaces_a_worker_whose_event_loop_is_blocked(tmp_path):
    # The heartbeat runs on the event loop: an app blocking the loop stops it, and gunicorn's
    # --timeout replaces the worker (the healthy-but-slow case above is not killed).
    proc, port = gunicorn(tmp_path, "--workers", "1", "--timeout", "1")
    try:
        url = f"http://127.0.0.1:{port}/"
        first = get_json(url, headers={"Connection": "close"})["pid"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "?block=30", timeout=15)
        proc.wait_for(rf"WORKER TIMEOUT \(pid:{first}\)")
        assert get_json(url, headers={"Connection": "close"})["pid"] != first
    finally:
        proc.kill_group()


def test_gunicorn_tls_settings_reach_the_worker(tmp_path):
    import json

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    pem = str(tmp_path / "server.pem")
    proc = Proc(
        [sys.executable, "-m", "gunicorn", "-k", "treadle.workers.TreadleWorker", "-b", "127.0.0.1:0"]
        + ["--certfile", pem, "--keyfile", pem, "prod_apps:info"]
    )
    try:
        port = int(proc.wait_for(r"Treadle running on https://127\.0\.0\.1:(\d+)").group(1))
        response = httpx.get(
            f"https://127.0.0.1:{port}/", verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")), timeout=5
        )
        assert json.loads(response.text)["scheme"] == "https"
    finally:
        proc.kill_group()
