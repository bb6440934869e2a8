"""Render a stats snapshot in the Prometheus text exposition format (version 0.0.4).

The JSON snapshot (see ``server.observe``) is the single source; this module only maps
its fields to metric names, types and help texts, converting milliseconds to seconds
because Prometheus metrics use base units.
"""

from __future__ import annotations

import math
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric name, type, help, section, key) for the plain numeric fields.
_SIMPLE = (
    ("treadle_connections_open", "gauge", "Open client connections.", "server", "connections_open"),
    ("treadle_requests_total", "counter", "Requests received.", "server", "requests_total"),
    ("treadle_requests_in_flight", "gauge", "Requests being answered.", "server", "requests_in_flight"),
    ("treadle_requests_per_second", "gauge", "Responses per second, recent mean.", "server", "requests_per_second"),
    ("treadle_received_bytes_total", "counter", "Bytes read from clients.", "server", "bytes_in"),
    ("treadle_sent_bytes_total", "counter", "Bytes written to clients.", "server", "bytes_out"),
    ("treadle_loop_iterations_total", "counter", "Passes of the event loop.", "reactor", "iterations"),
    ("treadle_loop_events_total", "counter", "Ready (fd, event) pairs reported by polls.", "reactor", "events"),
    ("treadle_loop_poll_seconds_total", "counter", "Time spent waiting in the poll.", "reactor", "poll_time_s"),
    (
        "treadle_loop_callback_seconds_total",
        "counter",
        "Time spent between polls: dispatch, timers and callbacks.",
        "reactor",
        "callback_time_s",
    ),
    ("treadle_loop_ready_queue", "gauge", "Callbacks queued to run.", "reactor", "ready_queue"),
    ("treadle_loop_timers_pending", "gauge", "Live timers scheduled.", "reactor", "timers_pending"),
    ("treadle_threadpool_threads", "gauge", "Worker threads.", "threadpool", "threads"),
    ("treadle_threadpool_busy", "gauge", "Worker threads running a request.", "threadpool", "busy"),
    ("treadle_threadpool_queued", "gauge", "Requests waiting for a worker thread.", "threadpool", "waiting"),
)


def render(snapshot: dict[str, Any]) -> str:
    """The exposition text for ``snapshot``; sections that are absent are left out."""
    out: list[str] = []
    for name, kind, help_text, section, key in _SIMPLE:
        values = snapshot.get(section)
        if values is not None and values.get(key) is not None:
            _family(out, name, kind, help_text, [("", values[key])])
    server = snapshot.get("server")
    if server is not None:
        by_class = server["responses_by_class"]
        samples = [(f'{{class="{name}"}}', count) for name, count in by_class.items()]
        _family(out, "treadle_responses_total", "counter", "Responses sent, by status class.", samples)
        _latency(out, server)
    return "\n".join(out) + "\n"


def _latency(out: list[str], server: dict[str, Any]) -> None:
    name = "treadle_request_duration_seconds"
    out.append(f"# HELP {name} Time from a request's head to its response's end.")
    out.append(f"# TYPE {name} summary")
    for label, ms in server["latency_ms"].items():
        if ms is not None:
            out.append(f'{name}{{quantile="{int(label[1:]) / 100}"}} {_number(ms / 1000.0)}')
    out.append(f"{name}_sum {_number(server['latency_sum_s'])}")
    out.append(f"{name}_count {server['latency_count']}")


def _family(out: list[str], name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf"
    return repr(value) if isinstance(value, float) else str(value)
