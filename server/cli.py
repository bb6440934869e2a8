"""The ``treadle`` command (and ``python -m treadle``): uvicorn's flags, parsed with argparse.

With no app argument it serves the built-in demo app (``server.demo:app``).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from treadle.server.config import Config
from treadle.server.config.envfile import EnvFileError
from treadle.server.config.files import ConfigFileError, apply_file_and_env
from treadle.server.config.production_flags import add_production_arguments, production_options
from treadle.server.config.rules import (
    HTTP_ENGINES,
    INTERFACES,
    LIFESPAN_MODES,
    LOG_LEVELS,
    ROOT_PATH_MODES,
    WS_MODES,
    normalize_prefix,
)
from treadle.server.process.supervisor import serve

DEMO_APP = "treadle.server.apps.demo:app"


def _header(value: str) -> tuple[str, str]:
    name, sep, val = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {value!r}")
    return name.strip(), val.strip()


def _limit(value: str) -> int | None:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0 means no limit)")
    return number or None


def _mount(value: str) -> tuple[str, ...]:
    """``/PREFIX=MODULE:APP``, optionally ``:INTERFACE`` (when auto-detection cannot tell)."""
    prefix, sep, app = value.partition("=")
    if not sep or not app:
        raise argparse.ArgumentTypeError(f"expected /PREFIX=MODULE:APP[:INTERFACE], got {value!r}")
    try:
        prefix = normalize_prefix(prefix)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    target, _, interface = app.rpartition(":")
    if target.count(":") == 1 and interface in INTERFACES:
        return prefix, target, interface
    return prefix, app


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the whole usage: with this many flags the message would scroll away."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="treadle",
        description="Serve an ASGI or WSGI application over HTTP/1.1 (which of the two is detected; "
        "--interface says it).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "app", nargs="?", default=None, help="the app as module:attribute (default: the demo app, unless --mount)"
    )
    p.add_argument("--host", default="127.0.0.1", help="bind to this address")
    p.add_argument("--port", type=int, default=8000, help="bind to this port (0: any free port)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="log level")
    p.add_argument("--log-config", default=None, help="logging config file (.json dictConfig, or .ini)")
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True, help="access log")
    p.add_argument(
        "--root-path", default="", help="where a proxy mounts the app (ASGI root_path, WSGI SCRIPT_NAME)"
    )
    p.add_argument(
        "--root-path-mode",
        choices=ROOT_PATH_MODES,
        default="stripped",
        help="stripped: the proxy removes --root-path from request paths and the server puts it back (uvicorn); "
        "kept: requests keep it in their path, and others get 404 (gunicorn's SCRIPT_NAME)",
    )
    p.add_argument("--app-dir", default=".", help="put this directory first on sys.path")
    p.add_argument("--factory", action="store_true", help="APP is a factory: call it to get the app")
    p.add_argument("--lifespan", choices=LIFESPAN_MODES, default="auto", help="lifespan protocol mode")
    p.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        help="add this header to every response (repeatable)",
    )
    p.add_argument(
        "--server-header", action=argparse.BooleanOptionalAction, default=True, help="send 'server: treadle'"
    )
    p.add_argument("--date-header", action=argparse.BooleanOptionalAction, default=True, help="send Date")
    p.add_argument("--selector", default=None, help="reactor selector (epoll, kqueue, poll, select, devpoll)")
    p.add_argument("--backlog", type=int, default=2048, help="listen backlog")
    p.add_argument(
        "--http", choices=HTTP_ENGINES, default="fast", help="HTTP/1.1 parser: fast (server/fastparse), or h11"
    )
    p.add_argument(
        "--interface", choices=INTERFACES, default="auto", help="the app's protocol (auto: detect)"
    )
    p.add_argument(
        "--mount",
        dest="mounts",
        action="append",
        type=_mount,
        default=[],
        metavar="/PREFIX=MODULE:APP[:INTERFACE]",
        help="also serve this ASGI or WSGI app below /PREFIX (repeatable; the longest prefix wins)",
    )
    p.add_argument("--threads", type=int, default=8, help="worker threads running WSGI apps")
    p.add_argument(
        "--wsgi-queue-size", type=int, default=1024, help="WSGI requests that may wait for a thread (503 past it)"
    )
    p.add_argument(
        "--stats-port",
        type=int,
        default=None,
        help="serve GET /stats (JSON) and GET /metrics (Prometheus) on this separate port (0: any free port)",
    )
    p.add_argument("--stats-host", default="127.0.0.1", help="address of the --stats-port endpoint")
    p.add_argument(
        "--stats-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="log a one-line stats summary this often (logger treadle.stats)",
    )
    p.add_argument(
        "--trace-reactor",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="trace every poll of the reactor to FILE (JSON Lines if it ends in .jsonl; stderr without FILE; "
        "put it after APP or write --trace-reactor=FILE)",
    )
    p.add_argument(
        "--timeout-keep-alive",
        type=float,
        default=5.0,
        help="close idle keep-alive connections after this many seconds",
    )
    p.add_argument(
        "--timeout-request-header",
        type=float,
        default=10.0,
        help="seconds a client has to send a complete request head (slowloris guard)",
    )
    p.add_argument(
        "--timeout-request-body",
        type=float,
        default=60.0,
        help="seconds a client may go without sending body bytes it owes (0: no limit)",
    )
    p.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        default=30.0,
        help="seconds in-flight requests get to finish on shutdown",
    )
    p.add_argument(
        "--limit-concurrency",
        type=_limit,
        default=None,
        help="answer 503 past this many requests in flight (0: no limit)",
    )
    p.add_argument(
        "--limit-request-head-size",
        type=int,
        default=16 * 1024,
        help="max bytes of request line + headers (431 past it)",
    )
    p.add_argument(
        "--limit-request-body-size",
        type=_limit,
        default=100 * 1024 * 1024,
        help="max bytes of request body (413 past it; 0: no limit)",
    )
    p.add_argument(
        "--ws", choices=WS_MODES, default="auto", help="WebSocket support (auto: wsproto if installed; none: off)"
    )
    p.add_argument(
        "--ws-max-size", type=int, default=16 * 1024 * 1024, help="max bytes of a WebSocket message (1009 past it)"
    )
    p.add_argument(
        "--ws-ping-interval", type=float, default=20.0, help="seconds between keepalive pings (0: no pings)"
    )
    p.add_argument(
        "--ws-ping-timeout",
        type=float,
        default=20.0,
        help="seconds a peer has to answer a ping before it is dropped (0: never dropped)",
    )
    p.add_argument(
        "--ws-per-message-deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate compression",
    )
    add_production_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(
        args.app if args.app is not None or args.mounts else DEMO_APP,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=args.log_config,
        access_log=args.access_log,
        root_path=args.root_path,
        root_path_mode=args.root_path_mode,
        app_dir=args.app_dir,
        factory=args.factory,
        lifespan=args.lifespan,
        headers=args.headers,
        server_header=args.server_header,
        date_header=args.date_header,
        selector=args.selector,
        backlog=args.backlog,
        http=args.http,
        interface=args.interface,
        mounts=args.mounts,
        threads=args.threads,
        wsgi_queue_size=args.wsgi_queue_size,
        stats_port=args.stats_port,
        stats_host=args.stats_host,
        stats_interval=args.stats_interval,
        trace_reactor=args.trace_reactor,
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_request_header=args.timeout_request_header,
        timeout_request_body=args.timeout_request_body,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        limit_concurrency=args.limit_concurrency,
        limit_request_head_size=args.limit_request_head_size,
        limit_request_body_size=args.limit_request_body_size,
        ws=args.ws,
        ws_max_size=args.ws_max_size,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_per_message_deflate=args.ws_per_message_deflate,
        **production_options(args),
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        apply_file_and_env(parser, argv)  # the config file, --env-file and TREADLE_* under the flags
    except (ConfigFileError, EnvFileError) as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    if args.selector is not None:
        from treadle.server._loop import available_selectors

        choices = available_selectors()
        if args.selector not in choices:
            build_parser().error(f"--selector must be one of {', '.join(choices)}")
    try:
        config = config_from_args(args)
        sys.exit(serve(config))
    except ValueError as exc:
        parser.error(str(exc))
