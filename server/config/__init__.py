"""Every option of the server, declared once, and the readers that fill them: command line, TOML
file, TREADLE_* variables, --env-file.

The values options may take, and the rules about them other parts share, are in ``rules.py``.
"""

from treadle.server.config.options import Config
from treadle.server.config.rules import (
    HTTP_ENGINES,
    INTERFACES,
    LIFESPAN_MODES,
    LOG_LEVELS,
    ROOT_PATH_MODES,
    WS_MODES,
)

__all__ = ["HTTP_ENGINES", "INTERFACES", "LIFESPAN_MODES", "LOG_LEVELS", "ROOT_PATH_MODES", "WS_MODES", "Config"]
