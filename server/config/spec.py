"""``Option``: how one ``Config`` field is set from outside — its flag, help, group, and how
its text is turned into a value — carried in the field's metadata by ``option()``.

The default and the Python name are the field's own; the flag, the TOML key and the
``TREADLE_*`` variable are derived from the name, so each is written once. From these
records ``flags.py`` builds the command line and ``files.py`` reads config files and the
environment.

The value types below turn a flag's text into the value ``Config`` takes; they raise
``argparse.ArgumentTypeError`` so argparse shows their message as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, Sequence

from treadle.server.config.rules import INTERFACES, normalize_prefix, parse_cert_reqs

ENV_PREFIX = "TREADLE_"


@dataclasses.dataclass(frozen=True)
class Option:
    """One option, as the command line, config files and ``TREADLE_*`` variables see it.

    ``type`` converts a flag's text; without it, the default's own type (``int``, ``float``)
    does, else the text is taken as it is. A bool default makes an on/off switch
    (``--x``/``--no-x``; only ``--x`` when not ``negatable``). ``repeat``: the flag may be
    given several times, each adding an item to a list. ``const``: the value may be left
    out, which means ``const``. ``flag``: the flag's name when it is not the option's
    (``headers`` → ``--header``, as each one adds one header). ``positional``: the app,
    the one argument without a flag.
    """

    help: str
    group: str | None = None  # the --help section; None: the general one
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: Sequence[str] | None = None
    flag: str | None = None
    repeat: bool = False
    const: Any = None
    negatable: bool = True
    positional: bool = False
    # Filled in from the Config field (see options.OPTIONS).
    name: str = ""
    default: Any = None

    @property
    def key(self) -> str:
        """The name in config files (``cors-allow-origin``), and the long flag without ``--``."""
        return (self.flag or self.name).replace("_", "-")

    @property
    def env_name(self) -> str:
        """``TREADLE_CORS_ALLOW_ORIGIN``."""
        return ENV_PREFIX + self.key.replace("-", "_").upper()

    @property
    def switch(self) -> bool:
        """An on/off option, which takes no value on the command line."""
        return isinstance(self.default, bool)

    @property
    def converter(self) -> Callable[[str], Any] | None:
        """What turns the flag's text into a value; None: the text is the value."""
        return self.type or (type(self.default) if type(self.default) in (int, float) else None)

    def convert(self, text: str) -> Any:
        """The value of this option's flag given as ``text`` (``ValueError`` or
        ``argparse.ArgumentTypeError`` if it is not one)."""
        value = self.converter(text) if self.converter is not None else text
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}")
        return value


def option(
    default: Any = dataclasses.MISSING, help: str = "", group: str | None = None, *, secret: bool = False, **how: Any
) -> Any:
    """A ``Config`` field with this default, set from outside as ``Option(help, group, **how)``
    says; a ``secret`` is left out of the ``Config``'s repr, so it stays out of logs."""
    return dataclasses.field(default=default, repr=not secret, metadata={"option": Option(help, group, **how)})


# Value types of flags whose text is more than an int or a float.


def header(value: str) -> tuple[str, str]:
    """``NAME:VALUE``."""
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {value!r}")
    return name.strip(), val.strip()


def limit(value: str) -> int | None:
    """A count or size where 0 means no limit (None)."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0 means no limit)")
    return number or None


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def mount(value: str) -> tuple[str, ...]:
    """``/PREFIX=MODULE:APP``, optionally ``:INTERFACE`` (when auto-detection cannot tell)."""
    prefix, sep, app = value.partition("=")
    if not sep or not app:
        raise argparse.ArgumentTypeError(f"expected /PREFIX=MODULE:APP[:INTERFACE], got {value!r}")
    try:
        prefix = normalize_prefix(prefix)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    target, _, interface = app.rpartition(":")
    if target.count(":") == 1 and interface in INTERFACES:
        return prefix, target, interface
    return prefix, app


def cert_reqs(value: str) -> int:
    try:
        return parse_cert_reqs(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
