"""Logging set-up: the loggers are ``treadle.error`` and ``treadle.access``.

The server only ever calls the standard ``logging`` API, so an application (or
``--log-config``) can route, format or silence these loggers like any other.
``configure_logging`` is what the CLI and ``treadle.run`` apply; embedding code that has
its own logging set-up can simply not call it.
"""

from __future__ import annotations

import json
import logging
import logging.config
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


def configure_logging(
    log_level: str | int | None = "info", log_config: str | dict | None = None, access_log: bool = True
) -> None:
    """Apply ``log_config`` (a dict, a ``.json`` file or an ``.ini`` file) or the default."""
    if log_config is None:
        logging.config.dictConfig(LOGGING_CONFIG)
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
