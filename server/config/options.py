"""``Config``: every tunable of the server, each declared once, with its default (waitress's lesson).

Each field carries, in its metadata, how it is set from outside (``spec.Option``): from it the
command line (``flags.py``), config files and ``TREADLE_*`` variables (``files.py``) are made,
so a new option is one declaration here, and the CLI, the TOML key, the variable and
``--help`` follow. The order of the fields is the order of ``--help``, group by group.

A ``Config`` is plain data, checked when made: the CLI builds one from flags,
``treadle.run(app, **options)`` from keywords; nothing else reads options. Loading the app
is ``apps/``'s business, building the TLS context ``tls.py``'s.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from treadle.server.config.rules import (
    HTTP_ENGINES,
    INTERFACES,
    LIFESPAN_MODES,
    LOG_LEVELS,
    ROOT_PATH_MODES,
    WS_MODES,
    check_credentials,
    comma_list,
    normalize_prefix,
    parse_cert_reqs,
)
from treadle.server.config.spec import Option, cert_reqs, header, limit, mount, option, positive

LIMITS = "limits and timeouts"
APPS = "apps"
WEBSOCKETS = "WebSockets"
OBSERVABILITY = "observability"
SOCKETS = "sockets"
TLS = "TLS (on when --ssl-certfile is given)"
PROXY = "behind a proxy"
CORS = "CORS (on when an origin is allowed)"
PROCESSES = "processes"
CONFIGURATION = "configuration"


@dataclasses.dataclass(eq=False)
class Config:
    """Server options. Times are seconds; sizes are bytes; ``None`` disables a limit.

    Pass options by keyword (``Config(app, port=0)``): their order is that of ``--help``.
    """

    app: Any = option(help="the app as module:attribute (default: the demo app, unless --mount)", positional=True)
    host: str = option("127.0.0.1", "bind to this address")
    port: int = option(8000, "bind to this port (0: any free port)")
    app_dir: str | None = option(".", "put this directory first on sys.path", metavar="DIR")
    factory: bool = option(False, "APP is a factory: call it to get the app", negatable=False)
    lifespan: str = option("auto", "lifespan protocol mode", choices=LIFESPAN_MODES)
    root_path: str = option("", "where a proxy mounts the app (ASGI root_path, WSGI SCRIPT_NAME)", metavar="PATH")
    # Who holds --root-path (server/target.py): "stripped" by the proxy (uvicorn), or "kept"
    # in each request's path (gunicorn's SCRIPT_NAME).
    root_path_mode: str = option(
        "stripped",
        "stripped: the proxy removes --root-path from request paths and the server puts it back (uvicorn); "
        "kept: requests keep it in their path, and others get 404 (gunicorn's SCRIPT_NAME)",
        choices=ROOT_PATH_MODES,
    )
    # Config also takes logging's own names and numbers ("INFO", 10), or None to leave the levels be.
    log_level: str | int | None = option("info", "log level", choices=LOG_LEVELS)
    log_config: str | dict | None = option(None, "logging config file (.json dictConfig, or .ini)", metavar="FILE")
    access_log: bool = option(True, "access log")
    headers: Sequence[tuple[str, str]] = option(
        (), "add this header to every response (repeatable)", flag="header", type=header, metavar="NAME:VALUE",
        repeat=True,
    )
    server_header: bool = option(True, "send 'server: treadle'")
    date_header: bool = option(True, "send Date")
    selector: str | None = option(None, "reactor selector (epoll, kqueue, poll, select, devpoll)", metavar="NAME")
    # The HTTP/1.1 parser (docs/server.md): "fast" (server/http1/fastparse: passes the whole suite,
    # proven against h11 by differential tests, ~5x cheaper per request), or "h11".
    http: str = option("fast", "HTTP/1.1 parser: fast (server/http1/fastparse), or h11", choices=HTTP_ENGINES)

    # Timeouts. Keep-alive 5 s as uvicorn; 10 s to send a complete request head
    # defeats slowloris while allowing slow mobile links; 30 s graceful as gunicorn.
    timeout_keep_alive: float = option(
        5.0, "close idle keep-alive connections after this many seconds", LIMITS, metavar="S"
    )
    timeout_request_header: float = option(
        10.0, "seconds a client has to send a complete request head (slowloris guard)", LIMITS, metavar="S"
    )
    # 60 s without a byte of a request body the client owes: nginx's client_body_timeout.
    timeout_request_body: float | None = option(
        60.0, "seconds a client may go without sending body bytes it owes (0: no limit)", LIMITS, metavar="S"
    )
    # 60 s in which a client takes none of what is waiting for it: nginx's send_timeout.
    timeout_send: float | None = option(
        60.0,
        "seconds a client may take none of the response waiting for it before it is dropped (0: no limit)",
        LIMITS,
        metavar="S",
    )
    timeout_graceful_shutdown: float = option(
        30.0, "seconds in-flight requests get to finish on shutdown", LIMITS, metavar="S"
    )
    # Limits. 16 KiB for the head is h11's default and what most servers accept.
    limit_concurrency: int | None = option(
        None, "answer 503 past this many requests in flight (0: no limit)", LIMITS, type=limit, metavar="N"
    )
    limit_request_head_size: int = option(
        16 * 1024, "max bytes of request line + headers (431 past it)", LIMITS, metavar="N"
    )
    limit_request_body_size: int | None = option(
        100 * 1024 * 1024, "max bytes of request body (413 past it; 0: no limit)", LIMITS, type=limit, metavar="N"
    )

    # Apps (docs/wsgi.md). WSGI apps run on a pool of 8 threads: enough to overlap the
    # I/O waits of typical apps, few enough that the GIL is not fought over; 1024 requests
    # may wait for a thread (a few KiB each) before the server answers 503.
    interface: str = option("auto", "the app's protocol (auto: detect)", APPS, choices=INTERFACES)
    # (prefix, app) or (prefix, app, interface); the prefix normalized ("/api/" → "/api").
    mounts: Sequence[tuple[str, Any]] = option(
        (),
        "also serve this ASGI or WSGI app below /PREFIX (repeatable; the longest prefix wins)",
        APPS,
        flag="mount",
        type=mount,
        metavar="/PREFIX=MODULE:APP[:INTERFACE]",
        repeat=True,
    )
    threads: int = option(8, "worker threads running WSGI apps", APPS, metavar="N")
    wsgi_queue_size: int = option(
        1024, "WSGI requests that may wait for a thread (503 past it)", APPS, metavar="N"
    )

    # WebSockets: 16 MiB messages, a ping every 20 s answered within 20 s (uvicorn's defaults).
    ws: str = option(
        "auto", "WebSocket support (auto: wsproto if installed; none: off)", WEBSOCKETS, choices=WS_MODES
    )
    ws_max_size: int = option(
        16 * 1024 * 1024, "max bytes of a WebSocket message (1009 past it)", WEBSOCKETS, metavar="N"
    )
    ws_ping_interval: float | None = option(
        20.0, "seconds between keepalive pings (0: no pings)", WEBSOCKETS, metavar="S"
    )
    ws_ping_timeout: float | None = option(
        20.0, "seconds a peer has to answer a ping before it is dropped (0: never dropped)", WEBSOCKETS, metavar="S"
    )
    ws_per_message_deflate: bool = option(True, "offer permessage-deflate compression", WEBSOCKETS)

    # Observability (server/observe/), all off by default. The stats endpoint has its own
    # port so it never mixes with the app's routes; trace_reactor is a file, or "-" for stderr.
    stats_port: int | None = option(
        None,
        "serve GET /stats (JSON) and GET /metrics (Prometheus) on this separate port (0: any free port)",
        OBSERVABILITY,
        type=int,
        metavar="PORT",
    )
    stats_host: str = option("127.0.0.1", "address of the --stats-port endpoint", OBSERVABILITY, metavar="HOST")
    stats_interval: float | None = option(
        None,
        "log a one-line stats summary this often (logger treadle.stats)",
        OBSERVABILITY,
        type=float,
        metavar="SECONDS",
    )
    trace_reactor: str | None = option(
        None,
        "trace every poll of the reactor to FILE (JSON Lines if it ends in .jsonl; stderr without FILE; "
        "put it after APP or write --trace-reactor=FILE)",
        OBSERVABILITY,
        const="-",
        metavar="FILE",
    )

    # Sockets (server/process/sockets.py): --fd, else --uds, else host and port.
    uds: str | None = option(None, "listen on this Unix domain socket", SOCKETS, metavar="PATH")
    fd: int | None = option(
        None, "serve the listening socket inherited as descriptor N", SOCKETS, type=int, metavar="N"
    )
    reuse_port: bool = option(False, "set SO_REUSEPORT (several servers on one port)", SOCKETS)
    backlog: int = option(2048, "listen backlog", SOCKETS, metavar="N")

    # TLS (server/tls.py): on when a certificate is given. 10 s to handshake, as for a head.
    ssl_certfile: str | None = option(None, "certificate chain (PEM)", TLS, metavar="FILE")
    ssl_keyfile: str | None = option(None, "private key (PEM), if not in the certfile", TLS, metavar="FILE")
    ssl_keyfile_password: str | None = option(None, "password of the private key", TLS, metavar="TEXT", secret=True)
    ssl_ca_certs: str | None = option(None, "CA certificates to verify clients with", TLS, metavar="FILE")
    # Config holds the ssl.CERT_* number; the name is what --help and the docs show.
    ssl_cert_reqs: int | str = option(
        "none",
        "client certificates: none, optional or required (or 0, 1, 2)",
        TLS,
        type=cert_reqs,
        metavar="none|optional|required",
    )
    ssl_ciphers: str | None = option(None, "OpenSSL cipher list for TLS 1.2", TLS, metavar="CIPHERS")
    ssl_handshake_timeout: float = option(10.0, "seconds to complete a TLS handshake", TLS, metavar="S")

    # Behind a proxy (server/apps/proxy_headers.py): on, and trusting only a proxy on this host
    # (127.0.0.1 and Unix-socket peers), as uvicorn does, so that switching servers behind
    # a local nginx does not change the client and scheme an app sees.
    proxy_headers: bool = option(
        True,
        "take client address and scheme from X-Forwarded-For/-Proto and Forwarded, from trusted peers "
        "(--forwarded-allow-ips; by default 127.0.0.1 and Unix sockets only, as uvicorn)",
        PROXY,
    )
    # None: $FORWARDED_ALLOW_IPS, else 127.0.0.1.
    forwarded_allow_ips: str | None = option(
        None,
        "trusted proxies: comma-separated addresses or networks, or '*' (unset: $FORWARDED_ALLOW_IPS, "
        "else 127.0.0.1)",
        PROXY,
        metavar="IPS",
    )

    # CORS (server/apps/cors_policy.py): on when an origin is allowed. Browsers cap max-age at 2 h.
    cors_allow_origins: Sequence[str] = option(
        (),
        "allow this origin (repeatable, or comma-separated; '*' for any)",
        CORS,
        flag="cors_allow_origin",
        metavar="ORIGIN",
        repeat=True,
    )
    cors_allow_methods: Sequence[str] = option(
        ("GET", "HEAD", "POST"),
        "comma-separated methods cross-origin requests may use ('*' for any)",
        CORS,
        type=comma_list,
        metavar="METHODS",
    )
    cors_allow_headers: Sequence[str] = option(
        (),
        "comma-separated request headers cross-origin requests may send ('*' for any)",
        CORS,
        type=comma_list,
        metavar="HEADERS",
    )
    cors_allow_credentials: bool = option(False, "allow cookies and credentials", CORS)
    cors_max_age: int = option(600, "seconds browsers may cache a preflight answer", CORS, metavar="S")

    # Processes (server/process/supervisor.py, server/process/reload.py).
    workers: int = option(1, "worker processes (supervised)", PROCESSES, type=positive, metavar="N")
    limit_max_requests: int | None = option(
        None,
        "a worker retires after N requests and is replaced (with --workers or under gunicorn)",
        PROCESSES,
        type=int,
        metavar="N",
    )
    reload: bool = option(False, "restart when source files change", PROCESSES)
    reload_dirs: Sequence[str] = option(
        (),
        "watch this directory (repeatable; none given: the current directory)",
        PROCESSES,
        flag="reload_dir",
        metavar="DIR",
        repeat=True,
    )
    # Added to server/process/reload.py's defaults.
    reload_includes: Sequence[str] = option(
        (),
        "also watch files matching this pattern (repeatable; *.py always)",
        PROCESSES,
        flag="reload_include",
        metavar="GLOB",
        repeat=True,
    )
    reload_excludes: Sequence[str] = option(
        (),
        "ignore files matching this pattern (repeatable; .*, __pycache__, *.py[cod], *~ always)",
        PROCESSES,
        flag="reload_exclude",
        metavar="GLOB",
        repeat=True,
    )

    env_file: str | None = option(
        None,
        "load this .env file into the environment first, with python-dotenv (treadle[dotenv])",
        CONFIGURATION,
        metavar="FILE",
    )

    def __post_init__(self) -> None:
        """Refuse what cannot work (``ValueError``, naming the option), and bring values to one
        form: lists for sequences, None for a limit of 0, ``/app`` for ``/app/``."""
        for declared in OPTIONS:
            value = getattr(self, declared.name)
            # log_level's choices are the command line's: logging checks what Config takes.
            if declared.choices and value not in declared.choices and declared.name != "log_level":
                raise ValueError(f"{declared.name} must be one of {tuple(declared.choices)}, not {value!r}")
        if self.threads < 1 or self.wsgi_queue_size < 0:
            raise ValueError("threads must be at least 1 and wsgi_queue_size at least 0")
        if self.root_path and not self.root_path.startswith("/"):
            raise ValueError(f"root_path must start with '/', got {self.root_path!r}")
        self.root_path = self.root_path.rstrip("/")  # "/app/" is "/app": paths after it start with "/"
        self.headers = [(str(n), str(v)) for n, v in self.headers]
        self.mounts = [(normalize_prefix(prefix), *rest) for prefix, *rest in self.mounts]
        try:
            self.ssl_cert_reqs = parse_cert_reqs(self.ssl_cert_reqs)
        except ValueError as exc:
            raise ValueError(f"ssl_cert_reqs: {exc}")
        if self.forwarded_allow_ips is None:
            self.forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        self.cors_allow_origins = list(self.cors_allow_origins)
        self.cors_allow_methods = list(self.cors_allow_methods)
        self.cors_allow_headers = list(self.cors_allow_headers)
        check_credentials(self.cors_allow_origins, self.cors_allow_credentials)
        self.reload_dirs = list(self.reload_dirs)
        self.reload_includes = list(self.reload_includes)
        self.reload_excludes = list(self.reload_excludes)
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.workers > 1 and self.stats_port:
            # Each worker is a process with its own counters and endpoint: they cannot share a port.
            raise ValueError("with workers, use stats_port 0 (each worker logs the free port it took)")
        if self.workers > 1 and self.trace_reactor not in (None, "", "-"):
            raise ValueError("with workers, trace the reactor to stderr (--trace-reactor alone), not to one file")
        if self.reload and self.workers > 1:
            raise ValueError("reload runs a single worker: use either reload or workers")
        # 0 (or "") turns these off.
        self.stats_interval = self.stats_interval or None
        self.trace_reactor = self.trace_reactor or None
        self.limit_max_requests = self.limit_max_requests or None
        self.limit_request_body_size = self.limit_request_body_size or None
        self.limit_concurrency = self.limit_concurrency or None
        self.timeout_request_body = self.timeout_request_body or None
        self.timeout_send = self.timeout_send or None
        self.ws_ping_interval = self.ws_ping_interval or None
        self.ws_ping_timeout = self.ws_ping_timeout or None

    @property
    def root_path_kept(self) -> bool:
        """Requests arrive with --root-path in their path (``root_path_mode="kept"``)."""
        return self.root_path_mode == "kept"

    def encoded_headers(self) -> list[tuple[bytes, bytes]]:
        """The ``--header`` pairs as the lowercase-name byte pairs they are sent as."""
        return [(n.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for n, v in self.headers]


# Every option, in --help order, each with its name and default filled in from its field.
OPTIONS: tuple[Option, ...] = tuple(
    dataclasses.replace(field.metadata["option"], name=field.name, default=field.default)
    for field in dataclasses.fields(Config)
)
