"""Render a stats snapshot in the Prometheus text exposition format (version 0.0.4).

The JSON snapshot (see ``server.observe``) is the single source; this module only maps
its fields to metric names, types and help texts, converting milliseconds to seconds
because Prometheus metrics use base units.

A supervisor's snapshot (``--workers``) is the sum over its workers, rendered under the same
names as a single server's, plus each worker's own numbers under ``treadle_worker_*`` with a
``worker`` label (its slot, 1 to N, which a replacement takes over). They are separate
families on purpose: were the per-worker series the same metric as the total, every
``sum()`` over it would count each request twice.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric name without prefix, type, help, section, key, scale) for the plain numeric fields.
_SIMPLE = (
    ("connections_open", "gauge", "Open client connections.", "server", "connections_open", 1),
    ("requests_total", "counter", "Requests received.", "server", "requests_total", 1),
    ("http2_responses_total", "counter", "Responses sent on HTTP/2 streams.", "server", "responses_http2", 1),
    ("requests_in_flight", "gauge", "Requests being answered.", "server", "requests_in_flight", 1),
    ("requests_per_second", "gauge", "Responses per second, recent mean.", "server", "requests_per_second", 1),
    ("received_bytes_total", "counter", "Bytes read from clients.", "server", "bytes_in", 1),
    ("sent_bytes_total", "counter", "Bytes written to clients.", "server", "bytes_out", 1),
    ("loop_iterations_total", "counter", "Passes of the event loop.", "reactor", "iterations", 1),
    ("loop_events_total", "counter", "Ready (fd, event) pairs reported by polls.", "reactor", "events", 1),
    ("loop_poll_seconds_total", "counter", "Time spent waiting in the poll.", "reactor", "poll_time_s", 1),
    (
        "loop_callback_seconds_total",
        "counter",
        "Time spent between polls: dispatch, timers and callbacks.",
        "reactor",
        "callback_time_s",
        1,
    ),
    ("loop_ready_queue", "gauge", "Callbacks queued to run.", "reactor", "ready_queue", 1),
    ("loop_timers_pending", "gauge", "Live timers scheduled.", "reactor", "timers_pending", 1),
    ("loop_lag_seconds", "gauge", "How late the loop ran its latest probe timer.", "reactor", "lag_ms", 0.001),
    (
        "loop_lag_max_seconds",
        "gauge",
        "The latest probe timers' worst lateness (10 s).",
        "reactor",
        "lag_max_ms",
        0.001,
    ),
    ("threadpool_threads", "gauge", "Worker threads.", "threadpool", "threads", 1),
    ("threadpool_busy", "gauge", "Worker threads running a request.", "threadpool", "busy", 1),
    ("threadpool_queued", "gauge", "Requests waiting for a worker thread.", "threadpool", "waiting", 1),
)

Labelled = list[tuple[str, dict[str, Any]]]  # (label pairs without braces, snapshot)


def render(snapshot: dict[str, Any]) -> str:
    """The exposition text for ``snapshot``; sections that are absent are left out."""
    out: list[str] = []
    _families(out, "treadle_", "", [("", snapshot)])
    workers = snapshot.get("workers")
    if workers:
        labelled = [(f'worker="{worker["worker"]}"', worker) for worker in workers]
        _families(out, "treadle_worker_", " Per worker.", labelled)
        supervisor = snapshot["supervisor"]
        alive = [("", supervisor["workers_alive"])]
        _family(out, "treadle_supervisor_workers", "gauge", "Worker processes alive.", alive)
        restarts = [("", supervisor["worker_restarts"])]
        _family(out, "treadle_supervisor_worker_restarts_total", "counter", "Workers replaced after dying.", restarts)
    return "\n".join(out) + "\n"


def _families(out: list[str], prefix: str, note: str, labelled: Labelled) -> None:
    for name, kind, help_text, section, key, scale in _SIMPLE:
        samples = [
            (labels, _scaled(values[key], scale))
            for labels, values in _sections(labelled, section)
            if values.get(key) is not None
        ]
        if samples:
            _family(out, prefix + name, kind, help_text + note, samples)
    servers = list(_sections(labelled, "server"))
    if servers:
        by_class = [
            (_join(labels, f'class="{name}"'), count)
            for labels, server in servers
            for name, count in server["responses_by_class"].items()
        ]
        _family(out, prefix + "responses_total", "counter", "Responses sent, by status class." + note, by_class)
        _latency(out, prefix + "request_duration_seconds", note, servers)


def _sections(labelled: Labelled, section: str) -> Iterable[tuple[str, dict[str, Any]]]:
    for labels, snapshot in labelled:
        values = snapshot.get(section)
        if values is not None:
            yield labels, values


def _latency(out: list[str], name: str, note: str, servers: Labelled) -> None:
    out.append(f"# HELP {name} Time from a request's head to its response's end.{note}")
    out.append(f"# TYPE {name} summary")
    for labels, server in servers:
        for label, ms in server["latency_ms"].items():
            if ms is not None:
                quantile = _join(labels, f'quantile="{int(label[1:]) / 100}"')
                out.append(f"{name}{{{quantile}}} {_number(ms / 1000.0)}")
        braced = f"{{{labels}}}" if labels else ""
        out.append(f"{name}_sum{braced} {_number(server['latency_sum_s'])}")
        out.append(f"{name}_count{braced} {server['latency_count']}")


def _family(out: list[str], name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
    out.append(f"# HELP {name} {help_text}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}"
               for labels, value in samples)


def _join(*labels: str) -> str:
    return ",".join(label for label in labels if label)


def _scaled(value: Any, scale: float) -> Any:
    return value if scale == 1 else value * scale


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf"
    return repr(value) if isinstance(value, float) else str(value)
