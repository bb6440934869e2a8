"""Load the application named on the command line as ``module:attribute``.

Kept apart from the CLI so the programmatic API (``treadle.run("pkg.mod:app")``) shares it,
and so its error messages say exactly which part of the name failed.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


class ImportFromStringError(Exception):
    """The ``module:attribute`` string could not be turned into an object."""


def import_from_string(import_str: str) -> Any:
    """Import ``"package.module:attr.subattr"`` and return the object it names."""
    module_str, _, attrs_str = import_str.partition(":")
    if not module_str or not attrs_str:
        raise ImportFromStringError(f'Import string "{import_str}" must be in format "<module>:<attribute>".')
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        # Only report "not found" for the module we were asked for; a missing import
        # *inside* that module is the app's own error and must surface unchanged.
        if exc.name != module_str and not module_str.startswith(f"{exc.name}."):
            raise
        raise ImportFromStringError(f'Could not import module "{module_str}".')
    instance: Any = module
    try:
        for attr in attrs_str.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise ImportFromStringError(f'Attribute "{attrs_str}" not found in module "{module_str}".')
    return instance


def load_app(app: Any, app_dir: str | None = ".", factory: bool = False) -> Any:
    """Resolve ``app`` (an object or an import string) into the ASGI callable to serve.

    ``app_dir`` is put first on ``sys.path`` so ``treadle main:app`` finds ``./main.py`` like
    ``python main.py`` would. With ``factory`` the resolved object is called with no
    arguments and its result is served.
    """
    if isinstance(app, str):
        if app_dir is not None:
            path = os.path.abspath(app_dir)
            if path not in sys.path:
                sys.path.insert(0, path)
        app = import_from_string(app)
    if factory:
        if not callable(app):
            raise ImportFromStringError("--factory was given, but the app is not callable.")
        app = app()
    if not callable(app):
        raise ImportFromStringError(f"The app {app!r} is not callable.")
    return app
