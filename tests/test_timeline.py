"""`python -m reactor.timeline`: a saved trace of real traffic becomes a picture."""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ElementTree

import pytest
from conftest import request, text_app

from treadle.reactor import timeline


@pytest.fixture
def trace(serve, tmp_path):
    """A JSON Lines trace of a server answering three requests on one connection."""
    path = tmp_path / "trace.jsonl"
    srv = serve(text_app(), trace_reactor=str(path))
    with srv.connect() as c:
        for _ in range(3):
            c.send(request())
            assert c.read_response().status == 200
    srv.stop()
    return path


def test_svg_has_a_block_per_wait_and_callback(trace, tmp_path):
    out = tmp_path / "t.svg"
    assert timeline.main([str(trace), "-o", str(out)]) == 0
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    root = ElementTree.parse(out).getroot()  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text for t in root.iter(f"{ns}title")]
    assert len(titles) == len(records) + sum(len(r["callbacks"]) for r in records)
    assert any("READ" in t and t.startswith("poll #") for t in titles)
    assert any(t.startswith("SocketTransport._read_ready: ") for t in titles)


def test_html_is_self_contained(trace, tmp_path):
    out = tmp_path / "t.html"
    assert timeline.main([str(trace), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "poll #1 at " in page
    assert "src=" not in page and "href=" not in page  # nothing to fetch


def test_png_when_matplotlib_is_installed(trace, tmp_path, capsys):
    out = tmp_path / "t.png"
    code = timeline.main([str(trace), "-o", str(out)])
    if importlib.util.find_spec("matplotlib") is None:
        assert code == 1 and "needs matplotlib" in capsys.readouterr().err
    else:
        assert code == 0 and out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_long_waits_are_shortened_and_callbacks_keep_their_scale():
    records = [
        {"poll": 1, "t_ms": 0, "timeout_ms": 5000, "queued": 0, "wait_ms": 4000.0,
         "events": [{"fd": 7, "events": ["READ"], "handler": "h"}], "callbacks": [{"name": "a", "ms": 0.5}]},
        {"poll": 2, "t_ms": 4001, "timeout_ms": 0, "queued": 1, "wait_ms": 0.01, "events": [],
         "callbacks": [{"name": "task Task-9 (RequestCycle.run)", "ms": 1.0}]},
    ]
    blocks, length = timeline.layout(records, max_gap_ms=2.0)
    assert [(b.lane, b.width, b.broken) for b in blocks] == [
        (0, 2.0, True), (1, 0.5, False), (0, 0.01, False), (1, 1.0, False)]
    assert length == pytest.approx(3.51)
    assert timeline.kind_of("task Task-9 (RequestCycle.run)") == "task (RequestCycle.run)"


def test_an_empty_trace_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert timeline.main([str(empty), "-o", str(tmp_path / "x.html")]) == 1
    assert "no polls" in capsys.readouterr().err
