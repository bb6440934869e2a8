"""``wsgi.file_wrapper`` (PEP 3333): a file the app returns, sent with ``os.sendfile`` when
it is a regular file (server/wsgi/cycle.py), iterated in blocks otherwise."""

from __future__ import annotations

import os
import stat
from typing import Any


class FileWrapper:
    """``wsgi.file_wrapper``: a file as an iterable of blocks.

    When the app returns one wrapping a regular file, the server does not iterate it: the
    reactor sends the rest of the file with ``os.sendfile`` (see ``WsgiCycle._respond``).
    """

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Any:
        read, size = self.filelike.read, self.block_size
        while True:
            block = read(size)
            if not block:
                return
            yield block

    def close(self) -> None:
        if hasattr(self.filelike, "close"):
            self.filelike.close()

    def file_range(self) -> tuple[int, int] | None:
        """(offset, count) of what is left of a regular file; None if it is not one."""
        try:
            fileno = self.filelike.fileno()
            info = os.fstat(fileno)
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return None  # io.UnsupportedOperation is both an OSError and a ValueError
        if not stat.S_ISREG(info.st_mode):
            return None
        return offset, max(0, info.st_size - offset)
