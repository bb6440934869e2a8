"""The ``treadle`` command (and ``python -m treadle``): parse the flags (made from the option
declarations in ``server/config/``), layer the config file and the environment under them,
make a ``Config``, serve it. Any invalid option is a usage error: one line, exit status 2.

With no app argument and no ``--mount`` it serves the built-in demo app.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from treadle.server.config import Config
from treadle.server.config.envfile import EnvFileError
from treadle.server.config.files import ConfigFileError, apply_file_and_env
from treadle.server.config.flags import build_parser, config_options
from treadle.server.process.supervisor import serve

__all__ = ["build_parser", "config_from_args", "main"]

DEMO_APP = "treadle.server.apps.demo:app"


def config_from_args(args: argparse.Namespace) -> Config:
    """The ``Config`` the parsed flags describe (``ValueError`` if it cannot work)."""
    app = args.app if args.app is not None or args.mounts else DEMO_APP
    return Config(app, **config_options(args))


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        apply_file_and_env(parser, argv)  # the config file, --env-file and TREADLE_* under the flags
    except (ConfigFileError, EnvFileError) as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    if args.selector is not None:
        from treadle.server._loop import available_selectors

        choices = available_selectors()
        if args.selector not in choices:
            parser.error(f"--selector must be one of {', '.join(choices)}")
    try:
        sys.exit(serve(config_from_args(args)))
    except ValueError as exc:
        parser.error(str(exc))
