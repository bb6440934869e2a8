"""Every option of the server, declared once, and the readers that fill them: command line, TOML
file, TREADLE_* variables, --env-file.
"""

from treadle.server.config.options import HTTP_ENGINES, LIFESPAN_MODES, LOG_LEVELS, Config

__all__ = ["HTTP_ENGINES", "LIFESPAN_MODES", "LOG_LEVELS", "Config"]
