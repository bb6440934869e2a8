"""--access-log-format (presets and templates of named fields), escaping of what the client
chose, and --log-format json: through a real server, and the formatter on its own."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import request, text_app, wait_until
from prod_support import Proc

from treadle.server.config import Config
from treadle.server.config.rules import ACCESS_LOG_FIELDS, ACCESS_LOG_PRESETS
from treadle.server.observe import access
from treadle.server.observe.logging import JsonFormatter, logging_config


@pytest.fixture
def access_records(caplog):
    caplog.set_level(logging.INFO, logger="treadle.access")
    return lambda: [r for r in caplog.records if r.name == "treadle.access"]


def _one_line(srv, records, target: str = "/", headers=None) -> logging.LogRecord:
    """The access record of one request (written by the reactor thread once the response is out)."""
    with srv.connect() as c:
        c.send(request("GET", target, headers=headers))
        assert c.read_response().status == 200
    (record,) = wait_until(records)
    return record


def test_the_default_line_is_its_template_rendered(monkeypatch):
    """The default line has a fast path of its own; it must say exactly what its template says."""
    config = Config("x:y")
    lines: list[str] = []
    monkeypatch.setattr(access, "_emit", lambda message, args, fields=None: lines.append(message % args))
    monkeypatch.setattr(access.access_logger, "isEnabledFor", lambda level: True)
    for client, target, seconds in [(("127.0.0.1", 50000), b"/p?q=1", 0.00031), (("::1", 8), b'/a"b\\', 12.34)]:
        access.log_request(config, client, b"GET", target, "1.1", 200, 13, seconds)
        entry = access.Entry(client, b"GET", target, "1.1", 200, 13, seconds, (), None)
        assert lines[-1] == access.AccessFormat("default").render(entry)
    assert lines[0] == '127.0.0.1:50000 - "GET /p?q=1 HTTP/1.1" 200 13 0.3ms'
    assert lines[1] == '[::1]:8 - "GET /a\\x22b\\x5C HTTP/1.1" 200 13 12340.0ms'


def test_combined_is_what_apache_and_nginx_write(serve, access_records):
    srv = serve(text_app(b"hello"), access_log_format="combined")
    headers = [("Referer", "http://example.com/"), ("User-Agent", "curl/8.0")]
    record = _one_line(srv, access_records, "/page?x=1", headers)
    line = record.getMessage()
    # 127.0.0.1 - - [03/Dec/2026:10:15:00 +0000] "GET /page?x=1 HTTP/1.1" 200 5 "http://example.com/" "curl/8.0"
    pattern = (r'^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
               r'"GET /page\?x=1 HTTP/1\.1" 200 5 "http://example\.com/" "curl/8\.0"$')
    assert re.match(pattern, line), line
    stamp = re.search(r"\[(.*?)\]", line).group(1)
    logged = time.mktime(time.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z"))
    assert abs(logged - time.time()) < 60


def test_common_leaves_out_referer_and_agent_and_dashes_are_for_missing_values(serve, access_records):
    srv = serve(text_app(b"hello"), access_log_format="common")
    line = _one_line(srv, access_records).getMessage()
    assert re.match(r'^127\.0\.0\.1 - - \[[^]]+\] "GET / HTTP/1\.1" 200 5$', line), line
    assert ACCESS_LOG_PRESETS["combined"].startswith(ACCESS_LOG_PRESETS["common"])


def test_every_field_in_a_template(serve, access_records):
    template = " | ".join(f"{name}={{{name}}}" for name in ACCESS_LOG_FIELDS) + " | 100%"
    srv = serve(text_app(b"hello"), access_log_format=template)
    line = _one_line(srv, access_records, "/a/b?c=d", [("User-Agent", "ua/1"), ("Referer", "http://r/")]).getMessage()
    values = dict(part.split("=", 1) for part in line.split(" | ")[:-1])
    assert line.endswith(" | 100%")  # a literal % is kept as it is
    assert values["client"].startswith("127.0.0.1:") and values["client_host"] == "127.0.0.1"
    assert (values["method"], values["target"], values["path"], values["query"]) == ("GET", "/a/b?c=d", "/a/b", "c=d")
    assert values["protocol"] == "HTTP/1.1" and values["request_line"] == "GET /a/b?c=d HTTP/1.1"
    assert (values["status"], values["bytes"]) == ("200", "5")
    assert 0 < float(values["duration"]) < 5 and float(values["duration_ms"]) == pytest.approx(
        float(values["duration"]) * 1000, abs=0.06)
    assert (values["user_agent"], values["referer"], values["host"]) == ("ua/1", "http://r/", "test")
    assert values["request_id"] == "-"  # no --request-id-header
    assert values["worker"] == str(os.getpid())
    assert re.fullmatch(r"\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", values["time"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", values["time_iso"])


def test_what_the_client_chose_is_escaped_as_nginx_does(serve, access_records):
    # A quote could end the quoted field and forge the rest of the line; bytes outside
    # printable ASCII (here Latin-1 and a tab, both legal in a field value) could corrupt it.
    srv = serve(text_app(b"hello"), access_log_format='"{request_line}" "{referer}" "{user_agent}" {query}')
    agent = 'evil" 200 0 "forged\tagent\\\xff'
    line = _one_line(srv, access_records, '/x"y?q="z', [("User-Agent", agent), ("Referer", "\xe9")]).getMessage()
    assert line == (
        r'"GET /x\x22y?q=\x22z HTTP/1.1" "\xE9" "evil\x22 200 0 \x22forged\x09agent\x5C\xFF" q=\x22z'
    )
    assert line.isascii() and line.count('"') == 6


def test_a_websocket_handshake_is_the_get_it_was_in_a_template():
    config = Config("x:y", access_log_format="combined")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    access.access_logger.addHandler(handler)
    level = access.access_logger.level
    access.access_logger.setLevel(logging.INFO)
    try:
        access.log_websocket(config, ("10.0.0.1", 4), b"/chat", 101, {"headers": [(b"user-agent", b"ws")], "state": {}})
        access.log_websocket(Config("x:y"), ("10.0.0.1", 4), b"/chat", 403)
    finally:
        access.access_logger.removeHandler(handler)
        access.access_logger.setLevel(level)
    assert re.match(r'^10\.0\.0\.1 - - \[[^]]+\] "GET /chat HTTP/1\.1" 101 0 "-" "ws"$', records[0]), records
    assert records[1] == '10.0.0.1:4 - "WebSocket /chat" 403'


@pytest.mark.parametrize(
    "form, error",
    [
        ("{nope}", "unknown field {nope}"),
        ("{status:5}", "no format spec"),
        ("{status", "a brace without its pair"),
        ("status}", "a brace without its pair"),
        ("{}", "unknown field {}"),
    ],
)
def test_a_bad_template_is_refused_when_the_options_are_read(form, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        Config("x:y", access_log_format=form)


def test_json_lines_carry_the_access_fields(serve, access_records):
    srv = serve(text_app(b"hello"), log_format="json")
    record = _one_line(srv, access_records, "/j?k=v", [("User-Agent", 'a"b\xff')])
    out = json.loads(JsonFormatter().format(record))
    assert out["logger"] == "treadle.access" and out["level"] == "info" and out["pid"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", out["time"])
    assert out["message"].startswith('127.0.0.1:') and '"GET /j?k=v HTTP/1.1" 200 5 ' in out["message"]
    assert (out["method"], out["path"], out["query"], out["status"], out["bytes"]) == ("GET", "/j", "k=v", 200, 5)
    assert out["user_agent"] == 'a"b\xff' and out["referer"] is None and out["request_id"] is None
    assert isinstance(out["duration"], float) and out["worker"] == os.getpid()


def test_the_json_formatter_writes_exceptions_and_plain_records():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("treadle.error", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "failed x" and out["level"] == "error"
    assert "ValueError: boom" in out["exception"]
    config = logging_config("json")
    assert all(f == {"()": JsonFormatter} for f in config["formatters"].values())
    assert logging_config("text")["formatters"]["default"]["format"]  # the text one untouched


def test_every_line_of_a_server_run_with_log_format_json_is_json():
    proc = Proc.treadle("prod_apps:info", "--port", "0", "--log-format", "json", "--request-id-header", "X-Request-ID")
    try:
        port = proc.port()
        agent = "t\u00e9st".encode("latin-1")  # obs-text: legal in a field value
        response = httpx.get(f"http://127.0.0.1:{port}/x?y=1", headers={"User-Agent": agent}, timeout=5)
        proc.wait_for(r'"logger": "treadle.access"')
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 0
    finally:
        proc.kill_group()
    lines = [json.loads(line) for line in proc.output().splitlines()]  # every one parses
    assert {line["logger"] for line in lines} >= {"treadle.error", "treadle.access"}
    (hit,) = [line for line in lines if line["logger"] == "treadle.access"]
    assert (hit["path"], hit["query"], hit["status"]) == ("/x", "y=1", 200)
    assert hit["request_id"] == response.headers["x-request-id"] and hit["user_agent"] == "t\u00e9st"
    assert lines[-1]["message"] == "Finished server process."


def test_every_field_is_documented():
    text = (Path(__file__).parent.parent / "docs" / "observability.md").read_text()
    assert [name for name in ACCESS_LOG_FIELDS if f"`{{{name}}}`" not in text] == []
