"""``gunicorn -k treadle.workers.TreadleWorker``: Treadle as a gunicorn worker class.

gunicorn's arbiter manages the processes (forking, ``--max-requests``, timeouts, reloads on
HUP, scaling with TTIN/TTOU); each worker runs an ordinary ``Server`` on the sockets gunicorn
bound. What is taken from gunicorn's configuration:

| gunicorn | Treadle |
|---|---|
| the app gunicorn loaded | the app (ASGI) |
| ``--keep-alive`` | ``timeout_keep_alive`` |
| ``--graceful-timeout`` | ``timeout_graceful_shutdown`` |
| ``--max-requests`` (+ jitter) | ``limit_max_requests``: the worker exits, gunicorn replaces it |
| ``--certfile --keyfile --ca-certs --cert-reqs --ciphers`` | TLS |
| ``--forwarded-allow-ips`` | proxy headers, trusted from those addresses |
| ``--log-level``, ``--access-logfile`` | the ``treadle.error`` / ``treadle.access`` loggers use gunicorn's handlers |

Heartbeat: gunicorn kills a worker that has not called ``notify()`` for ``--timeout``
seconds. The notification is run *on the event loop*, so a loop that is stuck (an app
blocking it) stops the heartbeat and gets the worker replaced, which is what the timeout
is for.

Exit: SIGTERM (gunicorn's graceful stop) begins a graceful shutdown; SIGQUIT/SIGINT (quick
stop) force one; the worker also leaves if the arbiter disappears.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn.workers.base import Worker

from treadle.server.config import Config
from treadle.server.main import Server, StartupError
from treadle.server.observe.logging import access_logger, error_logger


class TreadleWorker(Worker):
    def run(self) -> None:
        server = Server(_config(self), [listener.sock for listener in self.sockets])
        try:
            server.start()
        except (StartupError, OSError) as exc:
            self.log.error("%s", exc)
            sys.exit(getattr(exc, "exit_code", 1) or 1)
        try:
            while self.alive and server.running:
                assert server.loop is not None
                server.loop.call_soon_threadsafe(self.notify)
                server.join(0.5)  # wakes for SIGTERM (which only clears self.alive) promptly
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
            server.shutdown()
        except SystemExit:  # SIGQUIT/SIGINT: gunicorn's quick shutdown
            server.request_shutdown(force=True)
            server.join(5.0)
            raise


def _config(worker: Worker) -> Config:
    cfg = worker.cfg
    _use_gunicorn_logging(worker)
    options: dict[str, Any] = {
        "timeout_keep_alive": cfg.keepalive,
        "timeout_graceful_shutdown": cfg.graceful_timeout,
        "limit_max_requests": worker.max_requests if worker.max_requests < sys.maxsize else None,
        "proxy_headers": True,
        "forwarded_allow_ips": ",".join(cfg.forwarded_allow_ips),
        "access_log": bool(cfg.accesslog),
    }
    if cfg.is_ssl:
        options.update(
            ssl_certfile=cfg.certfile,
            ssl_keyfile=cfg.keyfile,
            ssl_ca_certs=cfg.ca_certs,
            ssl_cert_reqs=cfg.cert_reqs,
            ssl_ciphers=cfg.ciphers,
        )
    return Config(worker.wsgi, **options)


def _use_gunicorn_logging(worker: Worker) -> None:
    """Send ``treadle.error`` through gunicorn's error log and ``treadle.access`` through
    its access log (if it has one), at gunicorn's level."""
    error = logging.getLogger("gunicorn.error")
    error_logger.handlers = list(error.handlers)
    error_logger.setLevel(error.level)
    error_logger.propagate = False
    access = logging.getLogger("gunicorn.access")
    access_logger.handlers = list(access.handlers) if worker.cfg.accesslog else []
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False
