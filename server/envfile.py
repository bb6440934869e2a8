"""``--env-file``: load ``KEY=value`` lines (the dotenv format) into ``os.environ``.

Loaded before the app is imported, so settings modules see the values. Variables already
set in the environment win, as with python-dotenv's default: the file supplies defaults,
the deployment overrides them.

Format: blank lines and ``#`` comments are skipped; ``export KEY=value`` is accepted;
values may be single-quoted (taken literally) or double-quoted (``\\n``, ``\\t``, ``\\"``
and ``\\\\`` are unescaped); an unquoted value ends at `` #``.
"""

from __future__ import annotations

import os
import re

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class EnvFileError(Exception):
    """The env file could not be read, or has a line that is not ``KEY=value``."""


def parse_env_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise EnvFileError(f"Cannot read env file {path}: {exc.strerror or exc}")
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise EnvFileError(f"{path}:{number}: expected KEY=value, got {line.strip()!r}")
        values[match.group(1)] = _value(match.group(2))
    return values


def _value(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw[1:-1])
    return raw.split(" #", 1)[0].rstrip()


def load_env_file(path: str) -> None:
    """Set each variable of the file that is not already in the environment."""
    for key, value in parse_env_file(path).items():
        os.environ.setdefault(key, value)
