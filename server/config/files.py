"""Options from a TOML file and from ``TREADLE_*`` environment variables.

Precedence, lowest first: built-in defaults → the config file (``--config FILE``, else
``[tool.treadle]`` in ./pyproject.toml) → environment variables → command-line flags.
File and environment values become the parser's defaults, so the command line wins by
ordinary argparse rules, and every flag — including ones added later — is available in
both places, validated by the same ``type`` and ``choices`` as on the command line.

Keys are long flag names, with dashes or underscores: ``ssl-certfile``, ``cors_allow_origin``,
plus ``app``. Environment variables are ``TREADLE_`` and the key in capitals
(``TREADLE_WORKERS=4``). Booleans are TOML booleans, or ``1/true/yes/on`` and
``0/false/no/off`` in the environment; repeatable flags take a TOML list, or a
comma-separated list in the environment. An unknown key is an error, not a silent no-op:
a misspelt option would otherwise look like it took effect.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Mapping, Sequence

from treadle.server.config.envfile import load_env_file
from treadle.server.config.options import OPTIONS
from treadle.server.config.spec import ENV_PREFIX, Option

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_BY_KEY = {declared.key: declared for declared in OPTIONS}


class ConfigFileError(Exception):
    """A config file or environment variable is unreadable, invalid, or names an unknown option."""


def apply_file_and_env(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Layer the config file, then ``--env-file``, then ``TREADLE_*`` variables under ``argv``.

    The env file is loaded here, before the app is imported, and before ``TREADLE_*`` are
    read, so it may set those too. Raises ``ConfigFileError`` or ``EnvFileError``.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("--env-file", default=None)
    given = pre.parse_known_args(argv)[0]
    source, options = read_config_file(given.config)
    if source is not None:
        apply_defaults(parser, options, source)
    env_file = given.env_file or os.environ.get(ENV_PREFIX + "ENV_FILE") or parser.get_default("env_file")
    if env_file:
        load_env_file(env_file)
    for key, value in env_options(os.environ).items():
        apply_defaults(parser, {key: value}, _BY_KEY[key].env_name)


def read_config_file(path: str | None) -> tuple[str | None, dict[str, Any]]:
    """``(source, options)`` from ``path``, or from ``[tool.treadle]`` in ./pyproject.toml."""
    if path is None:
        if not os.path.exists("pyproject.toml"):
            return None, {}
        table = _load_toml("pyproject.toml").get("tool", {}).get("treadle", {})
        if not isinstance(table, dict):
            raise ConfigFileError("pyproject.toml: [tool.treadle] must be a table")
        return "pyproject.toml [tool.treadle]", table
    data = _load_toml(path)
    table = data.get("tool", {}).get("treadle") if os.path.basename(path) == "pyproject.toml" else data
    return path, table or {}


def _load_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigFileError(f"Cannot read config file {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"Invalid TOML in config file {path}: {exc}")


def env_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``TREADLE_*`` variables that name an option, by key (others are ignored: the
    environment is shared with the app, which may use the prefix for its own settings)."""
    return {declared.key: environ[declared.env_name] for declared in OPTIONS if declared.env_name in environ}


def apply_defaults(parser: argparse.ArgumentParser, options: Mapping[str, Any], source: str) -> None:
    """Make ``options`` (from ``source``) the parser's defaults; raise ``ConfigFileError`` on
    an unknown key or an invalid value."""
    defaults = {}
    for key, value in options.items():
        declared = _BY_KEY.get(str(key).replace("_", "-"))
        if declared is None:
            raise ConfigFileError(f"{source}: unknown option {key!r}")
        try:
            defaults[declared.name] = _convert(declared, value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigFileError(f"{source}: invalid value {value!r} for {key!r}: {exc}")
    parser.set_defaults(**defaults)


def _convert(declared: Option, value: Any) -> Any:
    if declared.switch:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError("expected true or false")
    if declared.repeat:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            items = [items]
        return [_scalar(declared, item.strip() if isinstance(item, str) else item) for item in items]
    if isinstance(value, list):  # e.g. cors-allow-methods = ["GET", "PUT"] for a comma-list flag
        value = ",".join(map(str, value))
    return _scalar(declared, value)


def _scalar(declared: Option, value: Any) -> Any:
    if isinstance(value, (list, dict)):
        raise ValueError("expected a single value")
    if isinstance(value, bool):
        raise ValueError("expected a value, not a boolean")
    return declared.convert(str(value))
