"""Sockets: Unix domain sockets, an inherited descriptor (socket activation), IPv6,
SO_REUSEPORT, the listen backlog, and a clear error when the port is taken."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import pytest
from prod_apps import info
from prod_support import Proc, get_json

from treadle.server import Config
from treadle.server.process.sockets import bind_sockets


def unix_get(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_unix_socket_serves_and_is_removed(serve, tmp_path):
    path = str(tmp_path / "treadle.sock")
    running = serve(info, uds=path)
    response = unix_get(path)
    assert response.startswith(b"HTTP/1.1 200")
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["client"] is None
    running.stop()
    assert not os.path.exists(path)


def test_stale_unix_socket_file_is_replaced_but_other_files_are_not(tmp_path):
    path = str(tmp_path / "s.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash
    sockets = bind_sockets(Config(info, uds=path))
    sockets[0].close()
    regular = tmp_path / "file"
    regular.write_text("keep me")
    with pytest.raises(OSError, match="Cannot listen on unix:"):
        bind_sockets(Config(info, uds=str(regular)))
    assert regular.read_text() == "keep me"


def test_cli_unix_socket(tmp_path):
    path = str(tmp_path / "cli.sock")
    proc = Proc.treadle("prod_apps:info", "--uds", path)
    try:
        proc.wait_for(r"running on http\+unix:" + path)
        assert unix_get(path).startswith(b"HTTP/1.1 200")
        proc.signal(15)
        assert proc.finish() == 0
        assert not os.path.exists(path)
    finally:
        proc.kill_group()


def test_inherited_fd_socket_activation():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    proc = Proc.treadle("prod_apps:info", "--fd", str(listener.fileno()), pass_fds=[listener.fileno()])
    listener.close()  # only the child holds it now
    try:
        assert proc.port() == port
        assert get_json(f"http://127.0.0.1:{port}/")["pid"] == proc.pid
    finally:
        proc.kill_group()


def test_several_inherited_fds_are_all_served():
    # systemd passes one descriptor per ListenStream=: here an IPv4 port and a Unix socket.
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    path = f"/tmp/treadle-fds-{os.getpid()}.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen(16)
    fds = [tcp.fileno(), unix.fileno()]
    proc = Proc.treadle("prod_apps:info", "--fd", str(fds[0]), "--fd", str(fds[1]), pass_fds=fds)
    tcp.close()
    unix.close()
    try:
        line = proc.wait_for(r"running on (.*) \(Press").group(1)
        assert line == f"http://127.0.0.1:{port}, http+unix:{path}"
        assert get_json(f"http://127.0.0.1:{port}/")["pid"] == proc.pid
        assert unix_get(path).startswith(b"HTTP/1.1 200")
        proc.signal(15)
        assert proc.finish() == 0
        assert os.path.exists(path)  # an inherited socket's file is its owner's to remove
    finally:
        proc.kill_group()
        os.unlink(path)


def test_fd_that_is_not_a_socket_is_a_clear_error(tmp_path):
    with open(tmp_path / "f", "w") as fh:
        proc = Proc.treadle("prod_apps:info", "--fd", str(fh.fileno()), pass_fds=[fh.fileno()])
    try:
        assert proc.finish() == 1
        assert "--fd" in proc.output() and "not a usable socket" in proc.output()
    finally:
        proc.kill_group()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_ipv6_loopback(serve):
    try:
        running = serve(info, host="::1")
    except OSError:
        pytest.skip("IPv6 loopback not configured")
    body = get_json(f"http://[::1]:{running.port}/")
    assert body["client"][0] == "::1"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_reuse_port_lets_two_servers_share_a_port(serve):
    first = serve(info, reuse_port=True)
    second = serve(info, port=first.port, reuse_port=True)
    assert second.port == first.port
    assert get_json(f"http://127.0.0.1:{first.port}/")["path"] == "/"
    with pytest.raises(OSError, match="Address already in use"):
        serve(info, port=first.port)  # without the option the port is taken


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a listener's backlog")
def test_backlog_reaches_listen():
    sockets = bind_sockets(Config(info, port=0, backlog=37))
    try:
        port = sockets[0].getsockname()[1]
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        if not out.strip():
            pytest.skip("ss cannot show listening sockets here")
        assert out.split()[2] == "37"  # Send-Q of a listener is its backlog
    finally:
        sockets[0].close()


@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["single", "supervisor"])
def test_port_in_use_is_one_line_and_exit_1(extra):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    proc = Proc.treadle("prod_apps:info", "--port", str(port), *extra)
    try:
        assert proc.finish() == 1
        assert len(proc.seen) == 1, proc.output()
        assert f"Cannot listen on 127.0.0.1:{port}: Address already in use" in proc.seen[0]
    finally:
        taken.close()
        proc.kill_group()


def _dual_stack_default() -> bool:
    try:
        with open("/proc/sys/net/ipv6/bindv6only") as fh:
            return fh.read().strip() == "0"
    except OSError:
        return False


@pytest.mark.skipif(not socket.has_ipv6 or not _dual_stack_default(), reason="needs a dual-stack IPv6 default")
def test_ipv6_any_address_also_serves_ipv4(serve):
    try:
        running = serve(info, host="::")
    except OSError:
        pytest.skip("IPv6 not configured")
    assert get_json(f"http://127.0.0.1:{running.port}/")["client"][0] in ("127.0.0.1", "::ffff:127.0.0.1")
    assert get_json(f"http://[::1]:{running.port}/")["client"][0] == "::1"


def test_a_unix_socket_passed_with_fd_is_not_removed(tmp_path):
    path = str(tmp_path / "activated.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    fd = listener.fileno()
    proc = Proc.treadle("prod_apps:info", "--fd", str(fd), "--uds", path, pass_fds=[fd])
    listener.close()
    try:
        proc.wait_for(r"running on http\+unix:" + path)
        assert unix_get(path).startswith(b"HTTP/1.1 200")
        proc.signal(15)
        assert proc.finish() == 0
        assert os.path.exists(path)  # it belongs to whoever passed it (systemd, say)
    finally:
        proc.kill_group()
