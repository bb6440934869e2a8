"""The ``treadle`` command line, made from the declarations: a flag for each ``Config`` option,
in the ``--help`` group the option names, with its default shown.

Each flag's ``dest`` is its option's name, so the parsed namespace is the ``Config`` keywords
(``config_options``). ``--config`` is the one flag that is not an option: it names where the
others come from (``files.py``).
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from treadle.server.config.options import CONFIGURATION, OPTIONS
from treadle.server.config.spec import Option


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the whole usage: with this many flags the message would scroll away."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows the defaults there are: not "(default: None)", "(default: [])" or "(default: )"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default in ("", []):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> Parser:
    """The parser of every option; its defaults are the declared ones, until ``files.py``
    layers a config file and the environment over them."""
    parser = Parser(
        prog="treadle",
        usage="%(prog)s [options] [app]",
        description="Serve an ASGI or WSGI application over HTTP/1.1 (which of the two is detected; "
        "--interface says it).",
        formatter_class=_HelpFormatter,
    )
    groups: dict[str | None, Any] = {None: parser}
    for declared in OPTIONS:
        if declared.group not in groups:
            groups[declared.group] = parser.add_argument_group(declared.group)
        _add(groups[declared.group], declared)
    groups[CONFIGURATION].add_argument(
        "--config",
        metavar="FILE",
        help="read options from this TOML file (without it: [tool.treadle] in ./pyproject.toml); flags win",
    )
    return parser


def _add(group: Any, declared: Option) -> None:
    if declared.positional:
        group.add_argument(declared.name, nargs="?", default=None, help=declared.help)
        return
    flag = "--" + declared.key
    if declared.switch:
        action = argparse.BooleanOptionalAction if declared.negatable else "store_true"
        group.add_argument(flag, dest=declared.name, action=action, default=declared.default, help=declared.help)
        return
    default = declared.default
    how: dict[str, Any] = {}
    if declared.repeat:
        how["action"] = "append"
    if declared.const is not None:
        how.update(nargs="?", const=declared.const)
    group.add_argument(
        flag,
        dest=declared.name,
        type=declared.converter,
        choices=declared.choices,
        default=list(default) if isinstance(default, tuple) else default,  # append adds to a list
        metavar=declared.metavar,
        help=declared.help,
        **how,
    )


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Config`` keywords ``args`` holds (all but the app)."""
    return {declared.name: getattr(args, declared.name) for declared in OPTIONS if not declared.positional}
