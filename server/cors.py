"""``--cors-allow-origin``: built-in CORS for apps that have none of their own (ASGI middleware).

Follows the Fetch standard's CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol):

- A request without ``Origin`` is not a CORS request and passes through untouched.
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
  here, never by the app: 204 with the allowed origin, methods, headers and max-age, or 400
  if the origin, the method or one of the requested headers is not allowed — the browser
  then refuses the actual request, and the 400 tells a developer reading the network tab why.
- Other requests from an allowed origin get ``Access-Control-Allow-Origin`` (and
  ``-Allow-Credentials``) added to the app's response; from other origins, nothing is added.
- Responses that depend on the origin carry ``Vary: Origin``, so caches keep them apart.
- CORS-safelisted methods (GET, HEAD, POST) and request headers (Accept, Accept-Language,
  Content-Language, Content-Type) are always allowed, as browsers do not ask for them.
- Credentials never go with the ``*`` wildcard (the standard forbids it); ``Config`` refuses
  that combination.
"""

from __future__ import annotations

from typing import Iterable

from server.types import ASGIApp, Message, Receive, Scope, Send

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})


def _items(values: Iterable[str]) -> list[str]:
    """Options may be repeated or comma-separated: ``--cors-allow-methods GET,PUT``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def check_credentials(origins: Iterable[str], allow_credentials: bool) -> None:
    """Refuse credentials with the ``*`` origin: a credentialed response may not say ``*``,
    and echoing any origin instead would hand every site the user's cookies."""
    if allow_credentials and "*" in _items(origins):
        raise ValueError("CORS credentials cannot be allowed for origin '*': list the origins")


class CORSMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Iterable[str],
        allow_methods: Iterable[str] = SAFELISTED_METHODS,
        allow_headers: Iterable[str] = (),
        allow_credentials: bool = False,
        max_age: int = 600,
    ) -> None:
        self.app = app
        origins = _items(allow_origins)
        methods = [m.upper() for m in _items(allow_methods)]
        headers = [h.lower() for h in _items(allow_headers)]
        self.any_origin = "*" in origins
        self.any_method = "*" in methods
        self.any_header = "*" in headers
        check_credentials(origins, allow_credentials)
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self.methods = frozenset(methods) | SAFELISTED_METHODS
        self.headers = frozenset(headers) | SAFELISTED_HEADERS
        self.credentials = allow_credentials
        self.max_age = max_age
        self._methods_line = ", ".join(sorted(self.methods)).encode("latin-1")

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = request_method = request_headers = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                request_method = value.decode("latin-1")
            elif name == b"access-control-request-headers":
                request_headers = value.decode("latin-1")
        if origin is None:
            await self.app(scope, receive, send)
        elif scope["method"] == "OPTIONS" and request_method is not None:
            await self._preflight(origin, request_method, request_headers, send)
        else:
            await self.app(scope, receive, self._decorating(origin, send))

    def _allow_origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if self.any_origin and not self.credentials:
            return [(b"access-control-allow-origin", b"*")]
        headers = [(b"access-control-allow-origin", origin.encode("latin-1"))]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def _preflight(self, origin: str, method: str, requested: str | None, send: Send) -> None:
        wanted = [h.strip().lower() for h in (requested or "").split(",") if h.strip()]
        if not self.origin_allowed(origin):
            problem = "origin"
        elif not (self.any_method or method in self.methods):
            problem = "method"
        elif not (self.any_header or all(h in self.headers for h in wanted)):
            problem = "headers"
        else:
            problem = None
        headers = [(b"vary", b"Origin")]
        if problem is not None:
            body = f"Disallowed CORS {problem}\n".encode()
            headers += [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        methods = method.encode("latin-1") if self.any_method else self._methods_line
        headers += self._allow_origin_headers(origin)
        headers.append((b"access-control-allow-methods", methods))
        if wanted:
            headers.append((b"access-control-allow-headers", ", ".join(wanted).encode("latin-1")))
        headers.append((b"access-control-max-age", b"%d" % self.max_age))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _decorating(self, origin: str, send: Send) -> Send:
        extra = self._allow_origin_headers(origin) if self.origin_allowed(origin) else []
        vary = not (self.any_origin and not self.credentials)

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.extend(extra)
                if vary:
                    _add_vary_origin(headers)
                message = dict(message, headers=headers)
            await send(message)

        return cors_send


def _add_vary_origin(headers: list[tuple[bytes, bytes]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            tokens = {t.strip().lower() for t in value.split(b",")}
            if b"origin" not in tokens and b"*" not in tokens:
                headers[index] = (name, value + b", Origin")
            return
    headers.append((b"vary", b"Origin"))
