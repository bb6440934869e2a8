"""``--env-file``: load a dotenv file into ``os.environ`` with python-dotenv (``treadle[dotenv]``).

python-dotenv is what uvicorn hands ``--env-file`` to, so a ``.env`` loads here as it does
there — multi-line values, ``${VAR}`` expansion, its quoting and escaping rules, a line it
cannot parse skipped with a warning — rather than in a dialect of our own.

Loaded before the app is imported, so settings modules see the values. Variables already
set in the environment win (python-dotenv's ``override=False``): the file supplies
defaults, the deployment overrides them; ``${VAR}`` expands to the environment's value
first, then the file's.

The file is opened here, not by python-dotenv, which silently loads nothing from a path
that does not exist: a misspelt ``--env-file`` must be an error, not a server quietly
running without its settings.
"""

from __future__ import annotations


class EnvFileError(Exception):
    """The env file could not be read, or python-dotenv is not installed."""


def load_env_file(path: str) -> None:
    """Set each variable of the dotenv file ``path`` that is not already in the environment.

    Raises ``EnvFileError`` if python-dotenv is missing or the file cannot be read as UTF-8.
    """
    try:
        from dotenv import load_dotenv
    except ImportError:
        raise EnvFileError(
            f"--env-file {path} needs python-dotenv: pip install 'treadle[dotenv]' (or python-dotenv)"
        )
    try:
        with open(path, encoding="utf-8") as stream:
            load_dotenv(stream=stream, override=False)
    except OSError as exc:
        raise EnvFileError(f"Cannot read env file {path}: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"Cannot read env file {path}: not UTF-8 ({exc.reason} at byte {exc.start})")
