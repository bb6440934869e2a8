"""Logging set-up: the loggers are ``treadle.error`` and ``treadle.access`` (and
``treadle.stats`` for ``--stats-interval``).

The server only ever calls the standard ``logging`` API, so an application (or
``--log-config``) can route, format or silence these loggers like any other.
``configure_logging`` is what the CLI and ``treadle.run`` apply; embedding code that has
its own logging set-up can simply not call it.

``--log-format json`` makes every line of these loggers one JSON object (``JsonFormatter``),
for log pipelines that parse rather than grep: ``time``, ``level``, ``logger``, ``pid``,
``message``, the traceback as ``exception``, and an access line's fields as members of
their own. A ``--log-config`` can name the same formatter (``"()":
"treadle.server.observe.logging.JsonFormatter"``).
"""

from __future__ import annotations

import copy
import json
import logging
import logging.config
import time
from typing import Any

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

error_logger = logging.getLogger("treadle.error")
access_logger = logging.getLogger("treadle.access")

LOGGING_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"format": "%(asctime)s %(levelname)-8s %(message)s"},
        "access": {"format": "%(asctime)s %(levelname)-8s %(message)s"},
    },
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "treadle": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "treadle.error": {"level": "INFO"},
        "treadle.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}



class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``{"time": "2026-12-03T10:15:00.123Z",
    "level": "info", "logger": "treadle.access", "pid": 4242, "message": "...", ...}``.

    The time is UTC with milliseconds (ISO 8601), so lines from several hosts sort together.
    An access record's fields (``record.access``, server/observe/access.py) are added as
    members; ``ensure_ascii`` keeps every line ASCII, whatever bytes a client sent.
    """

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, "access", None)
        if fields is not None:
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def logging_config(log_format: str = "text") -> dict[str, Any]:
    """The default logging configuration, its lines as text or (``"json"``) JSON."""
    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = JsonFormatter
    return config


def configure_logging(
    log_level: str | int | None = "info",
    log_config: str | dict | None = None,
    access_log: bool = True,
    log_format: str = "text",
) -> None:
    """Apply ``log_config`` (a dict, a ``.json`` file or an ``.ini`` file) or the default,
    with lines as ``log_format`` says (``text`` or ``json``) — a ``log_config`` says itself."""
    if log_config is None:
        logging.config.dictConfig(logging_config(log_format))
    elif isinstance(log_config, dict):
        logging.config.dictConfig(log_config)
    elif log_config.endswith(".json"):
        with open(log_config) as fh:
            logging.config.dictConfig(json.load(fh))
    else:
        logging.config.fileConfig(log_config, disable_existing_loggers=False)
    if log_level is not None:
        level = log_level if isinstance(log_level, int) else logging.getLevelName(log_level.upper())
        logging.getLogger("treadle").setLevel(level)
        error_logger.setLevel(level)
        access_logger.setLevel(level)
    if not access_log:
        access_logger.handlers = []
        access_logger.propagate = False
