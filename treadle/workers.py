"""The gunicorn worker class, at a path that stays put: ``gunicorn -k treadle.workers.TreadleWorker``."""

from treadle.server.process.gunicorn import TreadleWorker

__all__ = ["TreadleWorker"]
