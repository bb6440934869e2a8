"""Every tunable of the server, with its default, in one place (waitress's lesson).

A ``Config`` is plain data: the CLI builds one from flags, ``treadle.run(app, **options)``
from keywords; nothing else reads options. Loading the app is ``apps/``'s business
(``AppSet``), building the TLS context ``tls.py``'s.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, Sequence

from treadle.server.config.rules import (
    HTTP_ENGINES,
    INTERFACES,
    LIFESPAN_MODES,
    ROOT_PATH_MODES,
    WS_MODES,
    check_credentials,
    normalize_prefix,
)


class Config:
    """Server options. Times are seconds; sizes are bytes; ``None`` disables a limit."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        log_level: str | int | None = "info",
        log_config: str | dict | None = None,
        access_log: bool = True,
        root_path: str = "",
        # Who holds --root-path (server/target.py): "stripped" by the proxy (uvicorn), or "kept"
        # in each request's path (gunicorn's SCRIPT_NAME).
        root_path_mode: str = "stripped",
        app_dir: str | None = ".",
        factory: bool = False,
        lifespan: str = "auto",
        headers: Sequence[tuple[str, str]] = (),
        server_header: bool = True,
        date_header: bool = True,
        selector: str | None = None,
        backlog: int = 2048,
        # The HTTP/1.1 parser (docs/server.md): "fast" (server/fastparse: passes the whole suite,
        # proven against h11 by differential tests, ~5x cheaper per request), or "h11".
        http: str = "fast",
        # Observability (server/observe.py), all off by default. The stats endpoint has its own
        # port so it never mixes with the app's routes; trace_reactor is a file, or "-" for stderr.
        stats_port: int | None = None,
        stats_host: str = "127.0.0.1",
        stats_interval: float | None = None,
        trace_reactor: str | None = None,
        # Apps (docs/wsgi.md). WSGI apps run on a pool of 8 threads: enough to overlap the
        # I/O waits of typical apps, few enough that the GIL is not fought over; 1024 requests
        # may wait for a thread (a few KiB each) before the server answers 503.
        interface: str = "auto",
        mounts: Sequence[tuple[str, Any]] = (),
        threads: int = 8,
        wsgi_queue_size: int = 1024,
        # Sockets (server/sockets.py): --fd, else --uds, else host and port.
        uds: str | None = None,
        fd: int | None = None,
        reuse_port: bool = False,
        # TLS (server/tls.py): on when a certificate is given. 10 s to handshake, as for a head.
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile_password: str | None = None,
        ssl_ca_certs: str | None = None,
        ssl_cert_reqs: int = ssl.CERT_NONE,
        ssl_ciphers: str | None = None,
        ssl_handshake_timeout: float = 10.0,
        # Behind a proxy (server/proxy_headers.py): on, and trusting only a proxy on this host
        # (127.0.0.1 and Unix-socket peers), as uvicorn does, so that switching servers behind
        # a local nginx does not change the client and scheme an app sees.
        # forwarded_allow_ips None: $FORWARDED_ALLOW_IPS, else 127.0.0.1.
        proxy_headers: bool = True,
        forwarded_allow_ips: str | None = None,
        # CORS (server/cors_policy.py): on when an origin is allowed. Browsers cap max-age at 2 h.
        cors_allow_origins: Sequence[str] = (),
        cors_allow_methods: Sequence[str] = ("GET", "HEAD", "POST"),
        cors_allow_headers: Sequence[str] = (),
        cors_allow_credentials: bool = False,
        cors_max_age: int = 600,
        # Processes (server/supervisor.py, server/reload.py).
        workers: int = 1,
        limit_max_requests: int | None = None,
        reload: bool = False,
        reload_dirs: Sequence[str] = (),
        reload_includes: Sequence[str] = (),  # added to server.reload's defaults
        reload_excludes: Sequence[str] = (),
        env_file: str | None = None,
        # Limits. 16 KiB for the head is h11's default and what most servers accept.
        limit_request_head_size: int = 16 * 1024,
        limit_request_body_size: int | None = 100 * 1024 * 1024,
        limit_concurrency: int | None = None,
        # Timeouts. Keep-alive 5 s as uvicorn; 10 s to send a complete request head
        # defeats slowloris while allowing slow mobile links; 30 s graceful as gunicorn.
        timeout_keep_alive: float = 5.0,
        timeout_request_header: float = 10.0,
        # 60 s without a byte of a request body the client owes: nginx's client_body_timeout.
        timeout_request_body: float | None = 60.0,
        timeout_graceful_shutdown: float = 30.0,
        # WebSockets: 16 MiB messages, a ping every 20 s answered within 20 s (uvicorn's defaults).
        ws: str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
    ) -> None:
        if lifespan not in LIFESPAN_MODES:
            raise ValueError(f"lifespan must be one of {LIFESPAN_MODES}, not {lifespan!r}")
        if http not in HTTP_ENGINES:
            raise ValueError(f"http must be one of {HTTP_ENGINES}, not {http!r}")
        if ws not in WS_MODES:
            raise ValueError(f"ws must be one of {WS_MODES}, not {ws!r}")
        if root_path_mode not in ROOT_PATH_MODES:
            raise ValueError(f"root_path_mode must be one of {ROOT_PATH_MODES}, not {root_path_mode!r}")
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {INTERFACES}, not {interface!r}")
        if threads < 1 or wsgi_queue_size < 0:
            raise ValueError("threads must be at least 1 and wsgi_queue_size at least 0")
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.log_config = log_config
        self.access_log = access_log
        if root_path and not root_path.startswith("/"):
            raise ValueError(f"root_path must start with '/', got {root_path!r}")
        self.root_path = root_path.rstrip("/")  # "/app/" is "/app": paths after it start with "/"
        self.root_path_mode = root_path_mode
        self.root_path_kept = root_path_mode == "kept"
        self.app_dir = app_dir
        self.factory = factory
        self.lifespan = lifespan
        self.headers = [(str(n), str(v)) for n, v in headers]
        self.server_header = server_header
        self.date_header = date_header
        self.selector = selector
        self.backlog = backlog
        self.http = http
        self.stats_port = stats_port
        self.stats_host = stats_host
        self.stats_interval = stats_interval or None
        self.trace_reactor = trace_reactor or None
        self.interface = interface
        # (prefix, app) or (prefix, app, interface); the prefix normalized ("/api/" → "/api").
        self.mounts = [(normalize_prefix(prefix), *rest) for prefix, *rest in mounts]
        self.threads = threads
        self.wsgi_queue_size = wsgi_queue_size
        self.uds = uds
        self.fd = fd
        self.reuse_port = reuse_port
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile_password = ssl_keyfile_password
        self.ssl_ca_certs = ssl_ca_certs
        self.ssl_cert_reqs = ssl_cert_reqs
        self.ssl_ciphers = ssl_ciphers
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.proxy_headers = proxy_headers
        if forwarded_allow_ips is None:
            forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        self.forwarded_allow_ips = forwarded_allow_ips
        self.cors_allow_origins = list(cors_allow_origins)
        self.cors_allow_methods = list(cors_allow_methods)
        self.cors_allow_headers = list(cors_allow_headers)
        self.cors_allow_credentials = cors_allow_credentials
        self.cors_max_age = cors_max_age
        self.workers = workers
        self.limit_max_requests = limit_max_requests or None
        self.reload = reload
        self.reload_dirs = list(reload_dirs)
        self.reload_includes = list(reload_includes)
        self.reload_excludes = list(reload_excludes)
        self.env_file = env_file
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if workers > 1 and stats_port:
            # Each worker is a process with its own counters and endpoint: they cannot share a port.
            raise ValueError("with workers, use stats_port 0 (each worker logs the free port it took)")
        if workers > 1 and trace_reactor not in (None, "", "-"):
            raise ValueError("with workers, trace the reactor to stderr (--trace-reactor alone), not to one file")
        if reload and workers > 1:
            raise ValueError("reload runs a single worker: use either reload or workers")
        check_credentials(self.cors_allow_origins, cors_allow_credentials)
        self.limit_request_head_size = limit_request_head_size
        self.limit_request_body_size = limit_request_body_size or None
        self.limit_concurrency = limit_concurrency or None
        self.timeout_keep_alive = timeout_keep_alive
        self.timeout_request_header = timeout_request_header
        self.timeout_request_body = timeout_request_body or None
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.ws = ws
        self.ws_max_size = ws_max_size
        self.ws_ping_interval = ws_ping_interval or None
        self.ws_ping_timeout = ws_ping_timeout or None
        self.ws_per_message_deflate = ws_per_message_deflate

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """The ``--header`` pairs as the lowercase-name byte pairs they are sent as."""
        return [(n.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for n, v in self.headers]
