"""``--proxy-headers``: let a trusted reverse proxy tell the app who the client is and
whether it came over HTTPS — ASGI middleware for http and websocket scopes.

Only a connection from a trusted peer (``--forwarded-allow-ips``: addresses, CIDR networks,
or ``*``; Unix-socket peers are trusted, as gunicorn does, since reaching the socket file
already takes the file's permissions) may change ``scope["client"]`` and ``scope["scheme"]``.
From anyone else the headers are left for the app to see but ignored.

Which entry is the client: each proxy appends the address it received the request from,
so the list is read from the right, skipping proxies we trust; the first untrusted address
is the client (anything to its left was written by the client itself and may be forged).
If every entry is trusted, the leftmost is the client.

RFC 7239 ``Forwarded`` is used when present (it carries ``for`` and ``proto`` of each hop
together); otherwise ``X-Forwarded-For`` and ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable, Union

from treadle.server.types import ASGIApp, Receive, Scope, Send

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}

# RFC 7239 4: forwarded-pair = token "=" value; value = token / quoted-string.
_PAIR = re.compile(r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)\s*')


class TrustedHosts:
    """``--forwarded-allow-ips``: a comma-separated list of addresses and networks, or ``*``.

    Asked about the peer of every request, so each answer is remembered: behind a proxy a
    server sees few distinct peers, and the memo is emptied when full, so that many clients
    cannot grow it.
    """

    MEMO_SIZE = 1024

    def __init__(self, spec: str | Iterable[str]) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        entries = [item.strip() for item in items if item.strip()]
        self.everyone = "*" in entries
        self.networks: list[_Network] = []
        self.literals: set[str] = set()
        self._memo: dict[str, bool] = {}
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.literals.add(entry)  # a name (e.g. a Unix socket path) matched as written

    def __contains__(self, host: str | None) -> bool:
        if self.everyone or host is None:
            return True  # host None: a Unix socket peer
        known = self._memo.get(host)
        if known is not None:
            return known
        if len(self._memo) >= self.MEMO_SIZE:
            self._memo.clear()
        trusted = self._memo[host] = self._decide(host)
        return trusted

    def _decide(self, host: str) -> bool:
        if host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class ProxyHeadersMiddleware:
    def __init__(self, app: ASGIApp, trusted_hosts: str | Iterable[str] = "127.0.0.1") -> None:
        self.app = app
        self.trusted = TrustedHosts(trusted_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = dict(scope)
            rewrite_scope(scope, self.trusted)
        await self.app(scope, receive, send)


def rewrite_scope(scope: Scope, trusted: TrustedHosts) -> None:
    """Set ``client`` and ``scheme`` of an http or websocket ``scope`` (in place) from the
    proxy headers, if the peer is trusted and they say anything."""
    client = scope.get("client")
    if (client[0] if client else None) not in trusted:
        return
    forwarded = forwarded_client(scope["headers"], trusted)
    if forwarded is None:
        return
    host, port, proto = forwarded
    if host is not None:
        scope["client"] = (host, port)
    if proto is not None:
        table = _WS_SCHEMES if scope["type"] == "websocket" else _HTTP_SCHEMES
        scope["scheme"] = table.get(proto, scope.get("scheme"))


def forwarded_client(
    headers: Iterable[tuple[bytes, bytes]], trusted: TrustedHosts
) -> tuple[str | None, int, str | None] | None:
    """``(client host, port, proto)`` the proxies report, or None if they report nothing.

    ``Forwarded`` wins over ``X-Forwarded-*``; repeated header lines are one list.
    """
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    xfp: list[bytes] = []
    for name, value in headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            xff.append(value)
        elif name == b"x-forwarded-proto":
            xfp.append(value)
    if not (forwarded or xff or xfp):
        return None  # the common case (a direct client of a trusted host): nothing more to do
    nearest_proto = None  # X-Forwarded-Proto that does not line up with X-Forwarded-For
    if forwarded:
        hops = _parse_forwarded(b",".join(forwarded).decode("latin-1"))
    else:
        fors, protos = _split(xff), _split(xfp)
        if len(protos) == len(fors):
            hops = list(zip(fors, protos))
        else:
            hops = [(f, None) for f in fors]
            nearest_proto = protos[-1] if protos else None
    if not hops:
        return (None, 0, nearest_proto) if nearest_proto else None
    chosen = hops[0]
    for hop in reversed(hops):
        chosen = hop
        host = _host_port(hop[0])[0] if hop[0] else None
        if host is None or host not in trusted:
            break
    host, port = _host_port(chosen[0]) if chosen[0] else (None, 0)
    proto = (chosen[1] or nearest_proto or "").lower() or None
    return host, port, proto


def _split(values: list[bytes]) -> list[str]:
    return [item.strip() for item in b",".join(values).decode("latin-1").split(",") if item.strip()]


def _parse_forwarded(text: str) -> list[tuple[str | None, str | None]]:
    """The (for, proto) of each element of a Forwarded header, left to right."""
    hops = []
    for element in _split_outside_quotes(text, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            match = _PAIR.fullmatch(pair)
            if match is not None:
                value = match.group(2)
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                pairs[match.group(1).lower()] = value
        hops.append((pairs.get("for"), pairs.get("proto")))
    return hops


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _host_port(node: str) -> tuple[str | None, int]:
    """RFC 7239 6: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:80``, ``2001:db8::1`` (from
    X-Forwarded-For), ``unknown`` or an obfuscated ``_name`` (no address: None)."""
    node = node.strip()
    port = 0
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif node.count(":") == 1:
        host, _, rest = node.partition(":")
        if rest.isdigit():
            port = int(rest)
    else:
        host = node
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None, 0
    return host, port
