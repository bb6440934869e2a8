"""Every option of the server, declared once (``options.py``), and what is made from the
declarations: the command line (``flags.py``), config files and ``TREADLE_*`` variables
(``files.py``); plus ``--env-file`` (``envfile.py``).

A leaf: it imports nothing else of the server, so every part may import it. The values
options may take, and the rules about them other parts share, are in ``rules.py``.
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
