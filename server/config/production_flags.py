"""The ``treadle`` flags for running in production: sockets, TLS, proxies, CORS, processes.

Kept out of ``cli.py`` so that file stays the list of HTTP flags; each flag's ``dest`` is the
``Config`` keyword it feeds, so ``production_options`` is a plain copy.
"""

from __future__ import annotations

import argparse
from typing import Any

from treadle.server.config.rules import comma_list, parse_cert_reqs

# dest names, in the order Config takes them
OPTIONS = (
    "uds",
    "fd",
    "reuse_port",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_keyfile_password",
    "ssl_ca_certs",
    "ssl_cert_reqs",
    "ssl_ciphers",
    "ssl_handshake_timeout",
    "proxy_headers",
    "forwarded_allow_ips",
    "cors_allow_origins",
    "cors_allow_methods",
    "cors_allow_headers",
    "cors_allow_credentials",
    "cors_max_age",
    "workers",
    "limit_max_requests",
    "reload",
    "reload_dirs",
    "reload_includes",
    "reload_excludes",
    "env_file",
)


def _cert_reqs(value: str) -> int:
    try:
        return parse_cert_reqs(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def add_production_arguments(p: argparse.ArgumentParser) -> None:
    on_off = argparse.BooleanOptionalAction
    sockets = p.add_argument_group("sockets")
    sockets.add_argument("--uds", default=None, metavar="PATH", help="listen on this Unix domain socket")
    sockets.add_argument(
        "--fd", type=int, default=None, metavar="N", help="serve the listening socket inherited as descriptor N"
    )
    sockets.add_argument(
        "--reuse-port", action=on_off, default=False, help="set SO_REUSEPORT (several servers on one port)"
    )

    tls = p.add_argument_group("TLS (on when --ssl-certfile is given)")
    tls.add_argument("--ssl-certfile", default=None, metavar="FILE", help="certificate chain (PEM)")
    tls.add_argument("--ssl-keyfile", default=None, metavar="FILE", help="private key (PEM), if not in the certfile")
    tls.add_argument("--ssl-keyfile-password", default=None, metavar="TEXT", help="password of the private key")
    tls.add_argument("--ssl-ca-certs", default=None, metavar="FILE", help="CA certificates to verify clients with")
    tls.add_argument(
        "--ssl-cert-reqs",
        type=_cert_reqs,
        default=0,
        metavar="none|optional|required",
        help="client certificates: none, optional or required (or 0, 1, 2)",
    )
    tls.add_argument("--ssl-ciphers", default=None, metavar="CIPHERS", help="OpenSSL cipher list for TLS 1.2")
    tls.add_argument(
        "--ssl-handshake-timeout", type=float, default=10.0, metavar="S", help="seconds to complete a TLS handshake"
    )

    proxy = p.add_argument_group("behind a proxy")
    proxy.add_argument(
        "--proxy-headers",
        action=on_off,
        default=True,
        help="take client address and scheme from X-Forwarded-For/-Proto and Forwarded, from trusted peers "
        "(--forwarded-allow-ips; by default 127.0.0.1 and Unix sockets only, as uvicorn)",
    )
    proxy.add_argument(
        "--forwarded-allow-ips",
        default=None,
        metavar="IPS",
        help="trusted proxies: comma-separated addresses or networks, or '*' (unset: $FORWARDED_ALLOW_IPS, "
        "else 127.0.0.1)",
    )

    cors = p.add_argument_group("CORS (on when an origin is allowed)")
    cors.add_argument(
        "--cors-allow-origin",
        dest="cors_allow_origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this origin (repeatable, or comma-separated; '*' for any)",
    )
    cors.add_argument(
        "--cors-allow-methods",
        type=comma_list,
        default=["GET", "HEAD", "POST"],
        metavar="METHODS",
        help="comma-separated methods cross-origin requests may use ('*' for any)",
    )
    cors.add_argument(
        "--cors-allow-headers",
        type=comma_list,
        default=[],
        metavar="HEADERS",
        help="comma-separated request headers cross-origin requests may send ('*' for any)",
    )
    cors.add_argument(
        "--cors-allow-credentials", action=on_off, default=False, help="allow cookies and credentials"
    )
    cors.add_argument(
        "--cors-max-age", type=int, default=600, metavar="S", help="seconds browsers may cache a preflight answer"
    )

    procs = p.add_argument_group("processes")
    procs.add_argument("--workers", type=_positive, default=1, metavar="N", help="worker processes (supervised)")
    procs.add_argument(
        "--limit-max-requests",
        type=int,
        default=None,
        metavar="N",
        help="a worker retires after N requests and is replaced (with --workers or under gunicorn)",
    )
    procs.add_argument("--reload", action=on_off, default=False, help="restart when source files change")
    procs.add_argument(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="watch this directory (repeatable; none given: the current directory)",
    )
    procs.add_argument(
        "--reload-include",
        dest="reload_includes",
        action="append",
        default=[],
        metavar="GLOB",
        help="also watch files matching this pattern (repeatable; *.py always)",
    )
    procs.add_argument(
        "--reload-exclude",
        dest="reload_excludes",
        action="append",
        default=[],
        metavar="GLOB",
        help="ignore files matching this pattern (repeatable; .*, __pycache__, *.py[cod], *~ always)",
    )

    files = p.add_argument_group("configuration")
    files.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="read options from this TOML file (without it: [tool.treadle] in ./pyproject.toml); flags win",
    )
    files.add_argument(
        "--env-file",
        default=None,
        metavar="FILE",
        help="load this .env file into the environment first, with python-dotenv (treadle[dotenv])",
    )


def production_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Config`` keywords these flags set."""
    return {name: getattr(args, name) for name in OPTIONS}
