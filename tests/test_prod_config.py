"""Options from a TOML file, pyproject.toml, TREADLE_* variables and --env-file, in that
order under the command line; every production flag reaching Config; clear errors."""

from __future__ import annotations

import argparse
import os
import ssl
import sys

import pytest
from prod_support import Proc, get_json

from treadle.server.cli import build_parser, config_from_args
from treadle.server.config.envfile import EnvFileError, load_env_file
from treadle.server.config.files import ConfigFileError, apply_file_and_env


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    apply_file_and_env(parser, argv)
    return parser.parse_args(argv)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No TREADLE_* from the outside, and a working directory without a pyproject.toml."""
    for name in list(os.environ):
        if name.startswith("TREADLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_precedence_file_then_env_then_cli(clean_env, tmp_path):
    (tmp_path / "treadle.toml").write_text(
        'app = "prod_apps:info"\nport = 9001\nworkers = 3\nlog_level = "debug"\nproxy-headers = false\n'
        'cors-allow-origin = ["https://a.example", "https://b.example"]\n'
    )
    args = parse(["--config", "treadle.toml"])
    assert (args.app, args.port, args.workers, args.log_level) == ("prod_apps:info", 9001, 3, "debug")
    assert args.proxy_headers is False
    assert args.cors_allow_origins == ["https://a.example", "https://b.example"]
    clean_env.setenv("TREADLE_PORT", "9002")
    clean_env.setenv("TREADLE_PROXY_HEADERS", "true")
    args = parse(["--config", "treadle.toml"])
    assert (args.port, args.workers, args.proxy_headers) == (9002, 3, True)
    args = parse(["--config", "treadle.toml", "--port", "9003", "--no-proxy-headers"])
    assert (args.port, args.proxy_headers) == (9003, False)


def test_pyproject_tool_table_is_read_by_default(clean_env, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.treadle]\ntimeout-keep-alive = 2.5\n')
    assert parse([]).timeout_keep_alive == 2.5
    (tmp_path / "other.toml").write_text("timeout-keep-alive = 7\n")
    assert parse(["--config", "other.toml"]).timeout_keep_alive == 7.0  # --config replaces pyproject


def test_env_list_and_boolean_values(clean_env):
    clean_env.setenv("TREADLE_CORS_ALLOW_ORIGIN", "https://a.example, https://b.example")
    clean_env.setenv("TREADLE_RELOAD", "yes")
    clean_env.setenv("TREADLE_UNRELATED_SETTING", "ignored: the app may use the prefix too")
    args = parse([])
    assert args.cors_allow_origins == ["https://a.example", "https://b.example"]
    assert args.reload is True


@pytest.mark.parametrize(
    "content, message",
    [
        ("workerz = 2\n", "unknown option 'workerz'"),
        ("port = 'eighty'\n", "invalid value 'eighty' for 'port'"),
        ("lifespan = 'sometimes'\n", "expected one of auto, on, off"),
        ("reload = 'maybe'\n", "expected true or false"),
        ("port = [1, 2]\n", "invalid value"),
        ("port = \n", "Invalid TOML"),
        ("config = 'other.toml'\n", "unknown option 'config'"),
    ],
)
def test_config_file_errors(clean_env, tmp_path, content, message):
    (tmp_path / "bad.toml").write_text(content)
    with pytest.raises(ConfigFileError, match=message):
        parse(["--config", "bad.toml"])


def test_bad_env_value_names_the_variable(clean_env):
    clean_env.setenv("TREADLE_WORKERS", "many")
    with pytest.raises(ConfigFileError, match="TREADLE_WORKERS: invalid value"):
        parse([])


@pytest.fixture
def environ(monkeypatch):
    """``os.environ`` as a copy, for the env file to write to and the test to throw away."""
    copy = dict(os.environ)
    monkeypatch.setattr(os, "environ", copy)
    return copy


def test_env_file_is_read_as_python_dotenv_reads_it(environ, tmp_path, caplog):
    (tmp_path / ".env").write_text(
        "# comment\n"
        "export PLAIN=plain value # comment\n"
        "SINGLE='taken\\tas # written'\n"
        'DOUBLE="tab\\tand \\"quotes\\""\n'
        'MULTI="first line\nsecond line"\n'
        "BASE=/srv/app\n"
        "DATA=${BASE}/data\n"
        "GREETING=hello ${WHO}\n"
        "FALLBACK=${MISSING:-default}\n"
        "just words\n"
        "LAST=1\n"
    )
    environ.update(WHO="from-environment", BASE="/opt/app")
    environ.pop("MISSING", None)
    load_env_file(str(tmp_path / ".env"))
    assert {key: environ[key] for key in ("PLAIN", "SINGLE", "DOUBLE", "MULTI", "LAST")} == {
        "PLAIN": "plain value",
        "SINGLE": "taken\\tas # written",
        "DOUBLE": 'tab\tand "quotes"',
        "MULTI": "first line\nsecond line",
        "LAST": "1",
    }
    # The environment wins, in expansions too: ${BASE} is the deployment's, not the file's.
    assert (environ["BASE"], environ["DATA"]) == ("/opt/app", "/opt/app/data")
    assert (environ["GREETING"], environ["FALLBACK"]) == ("hello from-environment", "default")
    assert "could not parse statement starting at line 11" in caplog.text  # skipped, as by uvicorn


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: None, "No such file or directory"),
        (lambda path: path.mkdir(), "Is a directory"),
        (lambda path: path.write_bytes(b"NAME=Jos\xe9\n"), "not UTF-8"),
    ],
    ids=["missing", "directory", "latin-1"],
)
def test_env_file_that_cannot_be_read_is_an_error(environ, tmp_path, make, message):
    # python-dotenv itself would load nothing from a missing path or a directory, silently.
    path = tmp_path / "app.env"
    make(path)
    with pytest.raises(EnvFileError, match=f"Cannot read env file .*app.env: {message}"):
        load_env_file(str(path))


def test_env_file_without_python_dotenv_says_what_to_install(environ, tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("TREADLE_TEST_VALUE=1\n")
    environ.pop("TREADLE_TEST_VALUE", None)
    monkeypatch.setitem(sys.modules, "dotenv", None)  # import dotenv now raises ImportError
    with pytest.raises(EnvFileError, match=r"needs python-dotenv: pip install 'treadle\[dotenv\]'"):
        load_env_file(str(tmp_path / ".env"))
    assert "TREADLE_TEST_VALUE" not in environ


def test_env_file_sets_treadle_options_and_the_existing_environment_wins(clean_env, tmp_path):
    (tmp_path / "prod.env").write_text("TREADLE_PORT=9100\nTREADLE_TEST_VALUE=from-file\n")
    clean_env.setattr(os, "environ", {**os.environ, "TREADLE_TEST_VALUE": "from-environment"})
    args = parse(["--env-file", "prod.env"])
    assert args.port == 9100
    assert os.environ["TREADLE_TEST_VALUE"] == "from-environment"


PRODUCTION_FLAGS = [
    (["--uds", "/tmp/x.sock"], "uds", "/tmp/x.sock"),
    (["--fd", "3"], "fd", [3]),
    (["--fd", "3", "--fd", "4"], "fd", [3, 4]),
    (["--reuse-port"], "reuse_port", True),
    (["--backlog", "64"], "backlog", 64),
    (["--ssl-keyfile", "k.pem"], "ssl_keyfile", "k.pem"),
    (["--ssl-certfile", "c.pem"], "ssl_certfile", "c.pem"),
    (["--ssl-keyfile-password", "pw"], "ssl_keyfile_password", "pw"),
    (["--ssl-ca-certs", "ca.pem"], "ssl_ca_certs", "ca.pem"),
    (["--ssl-cert-reqs", "required"], "ssl_cert_reqs", ssl.CERT_REQUIRED),
    (["--ssl-cert-reqs", "1"], "ssl_cert_reqs", ssl.CERT_OPTIONAL),
    (["--ssl-ciphers", "ECDHE+AESGCM"], "ssl_ciphers", "ECDHE+AESGCM"),
    (["--ssl-handshake-timeout", "2.5"], "ssl_handshake_timeout", 2.5),
    (["--no-proxy-headers"], "proxy_headers", False),
    (["--forwarded-allow-ips", "10.0.0.0/8"], "forwarded_allow_ips", "10.0.0.0/8"),
    (
        ["--cors-allow-origin", "https://a", "--cors-allow-origin", "https://b"],
        "cors_allow_origins",
        ["https://a", "https://b"],
    ),
    (["--cors-allow-methods", "GET,PUT"], "cors_allow_methods", ["GET", "PUT"]),
    (["--cors-allow-headers", "X-A, X-B"], "cors_allow_headers", ["X-A", "X-B"]),
    (["--cors-allow-credentials", "--cors-allow-origin", "https://a"], "cors_allow_credentials", True),
    (["--cors-max-age", "60"], "cors_max_age", 60),
    (["--workers", "4"], "workers", 4),
    (["--limit-max-requests", "1000"], "limit_max_requests", 1000),
    (["--reload"], "reload", True),
    (["--reload-dir", "src", "--reload-dir", "lib"], "reload_dirs", ["src", "lib"]),
    (["--reload-include", "*.toml"], "reload_includes", ["*.toml"]),
    (["--reload-exclude", "tests/*"], "reload_excludes", ["tests/*"]),
    (["--env-file", "x.env"], "env_file", "x.env"),
]


@pytest.mark.parametrize("argv, attribute, expected", PRODUCTION_FLAGS)
def test_flag_reaches_config(argv, attribute, expected):
    config = config_from_args(build_parser().parse_args(["prod_apps:info", *argv]))
    assert getattr(config, attribute) == expected


def test_defaults():
    config = config_from_args(build_parser().parse_args([]))
    assert (config.workers, config.limit_max_requests, config.reload, config.proxy_headers) == (1, None, False, True)
    assert (config.ssl_certfile, config.ssl_cert_reqs, config.ssl_handshake_timeout) == (None, ssl.CERT_NONE, 10.0)
    assert (config.uds, config.fd, config.reuse_port, config.cors_allow_origins) == (None, [], False, [])


def test_bad_flag_values_are_usage_errors(capsys):
    for argv in (["--workers", "0"], ["--ssl-cert-reqs", "always"], ["--no-such-flag"]):
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err  # one line, not the whole usage


def test_cli_with_config_file_env_and_env_file(tmp_path):
    (tmp_path / "treadle.toml").write_text('app = "prod_apps:info"\nport = 1\naccess-log = false\n')
    (tmp_path / "app.env").write_text("TREADLE_TEST_VALUE=from-env-file\n")
    proc = Proc.treadle("--config", "treadle.toml", "--env-file", "app.env", cwd=tmp_path, env={"TREADLE_PORT": "0"})
    try:
        body = get_json(f"http://127.0.0.1:{proc.port()}/")
        assert body["env"] == "from-env-file"  # loaded before the app ran
        assert proc.count(r'"GET / HTTP/1.1" 200') == 0  # access-log = false from the file
    finally:
        proc.kill_group()


@pytest.mark.parametrize(
    "files, argv, message",
    [
        ({"treadle.toml": "workerz = 2\n"}, ["--config", "treadle.toml"], "treadle.toml: unknown option 'workerz'"),
        ({}, ["--config", "missing.toml"], "Cannot read config file missing.toml"),
        ({"pyproject.toml": "[tool.treadle]\nport = 'x'\n"}, [], "invalid value 'x' for 'port'"),
        ({}, ["--env-file", "missing.env"], "Cannot read env file missing.env"),
        # A dotenv.py in the working directory (first on sys.path) blocks python-dotenv's import.
        ({"dotenv.py": "raise ImportError", "app.env": ""}, ["--env-file", "app.env"], "needs python-dotenv"),
        ({}, ["--cors-allow-origin", "*", "--cors-allow-credentials"], "credentials cannot be allowed"),
        ({}, ["--reload", "--workers", "2"], "use either reload or workers"),
    ],
)
def test_cli_configuration_errors_are_one_line(tmp_path, files, argv, message):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    proc = Proc.treadle("prod_apps:info", *argv, cwd=tmp_path)
    try:
        assert proc.finish() == 2
        assert len(proc.seen) == 1 and message in proc.seen[0], proc.output()
    finally:
        proc.kill_group()
