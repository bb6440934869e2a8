"""The gunicorn worker class, at a path that stays put: ``gunicorn -k treadle.workers.TreadleWorker``."""

from treadle.server.workers import TreadleWorker

__all__ = ["TreadleWorker"]
