"""``--reload``: notice changed source files, so the supervisor restarts the worker.

A watcher has one method, ``changes()``: the paths changed since the last call, without
blocking for long (the supervisor calls it between other duties). With ``watchfiles``
installed (the ``reload`` extra) the OS notifies us (inotify, FSEvents, ...); without it,
the watched directories are polled for modification times, which is fine for a project's
worth of files.

Which files count: ``--reload-include`` patterns (``*.py`` always) matched against the file
name, minus ``--reload-exclude`` patterns (``.*``, ``__pycache__``, ``*.py[cod]``, ``*~`` always) matched
against the name and each directory on the way, so ``.git`` and ``.venv`` are skipped.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Iterable, Iterator, Union

from treadle.server.observe.logging import error_logger

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", "*.py[cod]", "*~", "__pycache__")


class FileFilter:
    def __init__(self, includes: Iterable[str] = (), excludes: Iterable[str] = ()) -> None:
        self.includes = (*DEFAULT_INCLUDES, *includes)
        self.excludes = (*DEFAULT_EXCLUDES, *excludes)

    def skip_dir(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.excludes)

    def __call__(self, path: str) -> bool:
        parts = os.path.normpath(path).split(os.sep)
        if any(self.skip_dir(part) for part in parts[:-1] if part):
            return False
        name = parts[-1]
        if any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern) for pattern in self.excludes):
            return False
        return any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern) for pattern in self.includes)


class PollingWatcher:
    """Compares modification times of the matching files on each call."""

    def __init__(self, directories: list[str], file_filter: FileFilter) -> None:
        self.directories = directories
        self.filter = file_filter
        self.mtimes = self._scan()

    def changes(self) -> set[str]:
        mtimes = self._scan()
        changed = {p for p, t in mtimes.items() if self.mtimes.get(p) != t}
        changed.update(p for p in self.mtimes if p not in mtimes)
        self.mtimes = mtimes
        return changed

    def _scan(self) -> dict[str, float]:
        mtimes = {}
        for path in self._files():
            try:
                mtimes[path] = os.stat(path).st_mtime
            except OSError:
                pass  # deleted while we looked
        return mtimes

    def _files(self) -> Iterator[str]:
        for directory in self.directories:
            for root, dirs, files in os.walk(directory):
                dirs[:] = [d for d in dirs if not self.filter.skip_dir(d)]
                for name in files:
                    path = os.path.join(root, name)
                    if self.filter(os.path.relpath(path, directory)):
                        yield path


class WatchfilesWatcher:
    """OS notifications through watchfiles; each call waits at most a few tens of ms."""

    def __init__(self, directories: list[str], file_filter: FileFilter) -> None:
        import watchfiles

        self.filter = file_filter
        self._changes = watchfiles.watch(
            *directories,
            watch_filter=lambda change, path: self._relevant(directories, path),
            debounce=400,
            rust_timeout=1,
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        next(self._changes)  # start watching now: later edits must not be missed

    def _relevant(self, directories: list[str], path: str) -> bool:
        for directory in directories:
            if path.startswith(directory + os.sep):
                return self.filter(os.path.relpath(path, directory))
        return self.filter(path)

    def changes(self) -> set[str]:
        return {path for _, path in next(self._changes, set())}


Watcher = Union[PollingWatcher, WatchfilesWatcher]


def make_watcher(dirs: Iterable[str], includes: Iterable[str], excludes: Iterable[str]) -> Watcher:
    """The best watcher available for ``dirs`` (default: the current directory)."""
    directories = [os.path.abspath(d) for d in dirs] or [os.getcwd()]
    file_filter = FileFilter(includes, excludes)
    try:
        watcher: Watcher = WatchfilesWatcher(directories, file_filter)
        kind = "watchfiles"
    except ImportError:
        watcher = PollingWatcher(directories, file_filter)
        kind = "polling"
    error_logger.info("Watching %s for changes (%s).", ", ".join(directories), kind)
    return watcher
