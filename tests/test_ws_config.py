"""The --ws flags: parsing, defaults, and what happens without wsproto."""

from __future__ import annotations

import sys

import pytest

from treadle.server import Config
from treadle.server.cli import build_parser, config_from_args
from treadle.server.http1.websocket import upgrade
from treadle.server.http2.websocket import connect
from treadle.server.ws_select import websocket_entries


def test_defaults_match_uvicorn():
    config = config_from_args(build_parser().parse_args([]))
    assert config.ws == "auto"
    assert config.ws_max_size == 16 * 1024 * 1024
    assert config.ws_ping_interval == 20.0
    assert config.ws_ping_timeout == 20.0
    assert config.ws_per_message_deflate is True


def test_flags():
    args = build_parser().parse_args(
        ["--ws", "none", "--ws-max-size", "1024", "--ws-ping-interval", "0", "--ws-ping-timeout", "5",
         "--no-ws-per-message-deflate"]
    )
    config = config_from_args(args)
    assert (config.ws, config.ws_max_size, config.ws_ping_interval, config.ws_ping_timeout) == ("none", 1024, None, 5)
    assert config.ws_per_message_deflate is False


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        Config("app:app", ws="websockets")


def test_modes_with_and_without_wsproto(monkeypatch, caplog):
    assert websocket_entries("auto") == (upgrade, connect)
    assert websocket_entries("wsproto") == (upgrade, connect)
    assert websocket_entries("none") is None
    monkeypatch.setitem(sys.modules, "wsproto", None)  # as if not installed
    with caplog.at_level("INFO", logger="treadle.error"):
        assert websocket_entries("auto") is None
    assert "pip install 'treadle[websockets]'" in caplog.text
    with pytest.raises(ImportError, match="pip install"):
        websocket_entries("wsproto")
