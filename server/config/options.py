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
    LOG_FORMATS,
    LOG_LEVELS,
    PATH_POLICIES,
    ROOT_PATH_MODES,
    WS_MODES,
    check_credentials,
    check_request_id_header,
    comma_list,
    normalize_prefix,
    parse_access_log_format,
    parse_cert_reqs,
)
from treadle.server.config.spec import Option, cert_reqs, header, limit, mount, option, positive

LIMITS = "limits and timeouts"
APPS = "apps"
WEBSOCKETS = "WebSockets"
HTTP2 = "HTTP/2"
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
    # server/observe/access.py; the fields and presets are declared in config/rules.py.
    access_log_format: str = option(
        "default",
        "the access line: a preset (default, common, combined: Apache's and nginx's) or a template of "
        "{fields} such as '{client} \"{request_line}\" {status} {duration_ms}ms {request_id}' "
        "(docs/observability.md lists the fields)",
        metavar="FORMAT",
    )
    log_format: str = option("text", "write every log line as text, or as one JSON object", choices=LOG_FORMATS)
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
    # RFC 9112 2.2: a recipient MAY take a bare LF as a line end. A proxy in front that does not
    # is how requests get smuggled, so it is refused unless asked for (docs/server.md: evidence).
    accept_bare_lf: bool = option(
        False, "take a bare LF as a line end in request heads and trailers (otherwise: 400)", negatable=False
    )
    # server/target.py: what a request path may not do by default (nginx refuses the same).
    path_policy: str = option(
        "strict",
        "strict: 400 for a path that climbs above / by dot-segments, holds NUL, has a bad percent-escape "
        "or is not UTF-8; lenient: hand it to the app",
        choices=PATH_POLICIES,
    )

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
    # Heroku's bound for a request id; a longer one is replaced (server/observe/request_id.py).
    limit_request_id_length: int = option(
        200, "longest request id taken from a client (--request-id-header); a longer one is replaced", LIMITS,
        type=positive, metavar="N",
    )
    # 100 field lines: gunicorn's limit_request_fields.
    limit_request_fields: int = option(100, "max field lines in a request head (431 past it)", LIMITS, metavar="N")
    # Chunk extensions are read and dropped, outside any body limit, so they have their own
    # (RFC 9112 7.1.1; Go CVE-2023-39326): 4 KiB per chunk as Puma, 16 KiB per body as Node.
    limit_chunk_extension_size: int = option(
        4096, "max bytes of chunk extensions on one chunk (413 past it)", LIMITS, metavar="N"
    )
    limit_chunk_extension_total: int = option(
        16384, "max bytes of chunk extensions in one request body (413 past it)", LIMITS, metavar="N"
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

    # HTTP/2 (docs/http2.md): on by default, over TLS (ALPN) and in cleartext (prior knowledge,
    # Upgrade: h2c). 100 concurrent streams: the RFC's recommended minimum, and what nginx, h2o
    # and Go advertise. A stream's request-body window of 64 KiB is the protocol's default; the
    # connection's is as large as all streams' together, so that a slow app holds back only its
    # own stream (the bound on a connection's buffered request body is their product: 6.4 MiB).
    # Budgets are per 10 s (a rate, not a total): a browser cancelling now and then never runs
    # out, a Rapid Reset or PING flood does within a fraction of a second. Streams per
    # connection are not limited by default, as in Go's and h2o's servers (nginx's 1,000 is
    # for its memory pools): a limit moves long-lived connections between workers.
    http2: bool = option(True, "serve HTTP/2 (ALPN h2 over TLS; prior knowledge and Upgrade: h2c in cleartext)", HTTP2)
    h2_max_concurrent_streams: int = option(
        100, "streams a client may have open at once (REFUSED_STREAM past it)", HTTP2, type=positive, metavar="N"
    )
    h2_stream_window: int = option(
        65535, "bytes of request body a stream may have unread by its app", HTTP2, type=positive, metavar="BYTES"
    )
    h2_max_resets: int = option(
        200,
        "stream resets (sent by the client, or provoked from the server) allowed per 10 s, past which the "
        "connection ends with GOAWAY ENHANCE_YOUR_CALM (Rapid Reset, MadeYouReset)",
        HTTP2,
        type=positive,
        metavar="N",
    )
    h2_max_control_frames: int = option(
        1000,
        "PING, SETTINGS and PRIORITY frames allowed per 10 s, past which the connection ends with "
        "GOAWAY ENHANCE_YOUR_CALM",
        HTTP2,
        type=positive,
        metavar="N",
    )
    h2_max_requests: int | None = option(
        0,
        "streams one connection carries before it asks the client to open another (GOAWAY; 0: no limit)",
        HTTP2,
        type=limit,
        metavar="N",
    )

    # Observability (server/observe/), all off by default. The stats endpoint has its own
    # port so it never mixes with the app's routes; trace_reactor is a file, or "-" for stderr.
    stats_port: int | None = option(
        None,
        "serve the live dashboard (GET /), /stats (JSON) and /metrics (Prometheus) on this separate port "
        "(0: any free port; with workers, the supervisor serves them for all)",
        OBSERVABILITY,
        type=int,
        metavar="PORT",
    )
    stats_host: str = option("127.0.0.1", "address of the --stats-port endpoint", OBSERVABILITY, metavar="HOST")
    stats_interval: float | None = option(
        None,
        "log a one-line stats summary this often (logger treadle.stats; with workers, one for all)",
        OBSERVABILITY,
        type=float,
        metavar="SECONDS",
    )
    # server/observe/request_id.py: off unless a header is named (X-Request-ID is the usual one).
    request_id_header: str | None = option(
        None,
        "give each request an id: the client's from this header if valid, else a new one; in the scope "
        "(state['request_id']), the WSGI environ, the response and the access log",
        OBSERVABILITY,
        metavar="NAME",
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
    # Several: systemd passes one descriptor per ListenStream= (from 3 up), all served alike.
    fd: Sequence[int] = option(
        (), "serve the listening socket inherited as descriptor N (repeatable)", SOCKETS, type=int, metavar="N",
        repeat=True,
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
    # gunicorn's --max-requests-jitter: each worker draws its own 0..N, so that workers
    # started together do not all retire together.
    limit_max_requests_jitter: int = option(
        0, "add 0 to N (drawn per worker) to --limit-max-requests, so workers do not retire at once", PROCESSES,
        metavar="N",
    )
    # A worker's event loop reports every second (server/process/worker_main.py): 30 s of silence
    # means a loop blocked by the app or a deadlock, as gunicorn's default --timeout judges it.
    timeout_worker_healthcheck: float | None = option(
        30.0,
        "replace a worker whose event loop has not answered the supervisor for this many seconds (0: never)",
        PROCESSES,
        metavar="S",
    )
    # Long enough for apps that load models or warm caches at start-up; a worker stuck longer
    # (a hung connection in lifespan startup) would otherwise hold a reload up for ever.
    timeout_worker_startup: float | None = option(
        60.0,
        "kill a worker not serving this many seconds after it started: a reload is abandoned, a first start "
        "fails (0: no limit)",
        PROCESSES,
        metavar="S",
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
        if self.limit_request_fields < 1:
            raise ValueError(f"limit_request_fields must be at least 1, not {self.limit_request_fields}")
        if self.limit_chunk_extension_size < 0 or self.limit_chunk_extension_total < 0:
            raise ValueError("limit_chunk_extension_size and limit_chunk_extension_total must be at least 0")
        if self.threads < 1 or self.wsgi_queue_size < 0:
            raise ValueError("threads must be at least 1 and wsgi_queue_size at least 0")
        parse_access_log_format(self.access_log_format)  # ValueError naming what is wrong
        if self.limit_request_id_length < 1:
            raise ValueError("limit_request_id_length must be at least 1")
        self.request_id_header = self.request_id_header or None  # "" (a TOML file, a variable): off
        check_request_id_header(self.request_id_header)
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
        self.fd = [] if self.fd is None else [self.fd] if isinstance(self.fd, int) else list(self.fd)
        if len(set(self.fd)) != len(self.fd):
            raise ValueError(f"fd: each descriptor once, not {self.fd}")
        self.reload_dirs = list(self.reload_dirs)
        self.reload_includes = list(self.reload_includes)
        self.reload_excludes = list(self.reload_excludes)
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")
        if self.workers > 1 and self.trace_reactor not in (None, "", "-"):
            raise ValueError("with workers, trace the reactor to stderr (--trace-reactor alone), not to one file")
        if self.limit_max_requests_jitter < 0:
            raise ValueError("limit_max_requests_jitter must be at least 0")
        if self.limit_max_requests_jitter and not self.limit_max_requests:
            raise ValueError("limit_max_requests_jitter needs limit_max_requests")
        for name in ("timeout_worker_healthcheck", "timeout_worker_startup"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"{name} must be at least 0 (0: no limit)")
        if self.reload and self.workers > 1:
            raise ValueError("reload runs a single worker: use either reload or workers")
        # 0 (or "") turns these off.
        self.stats_interval = self.stats_interval or None
        self.trace_reactor = self.trace_reactor or None
        self.limit_max_requests = self.limit_max_requests or None
        self.h2_max_requests = self.h2_max_requests or None
        for name in ("h2_max_concurrent_streams", "h2_stream_window", "h2_max_resets", "h2_max_control_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        self.limit_request_body_size = self.limit_request_body_size or None
        self.limit_concurrency = self.limit_concurrency or None
        self.timeout_request_body = self.timeout_request_body or None
        self.timeout_send = self.timeout_send or None
        self.ws_ping_interval = self.ws_ping_interval or None
        self.ws_ping_timeout = self.ws_ping_timeout or None
        self.timeout_worker_healthcheck = self.timeout_worker_healthcheck or None
        self.timeout_worker_startup = self.timeout_worker_startup or None

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
