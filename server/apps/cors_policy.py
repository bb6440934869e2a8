"""The CORS decisions, sans-IO: one ``CORSPolicy`` shared by the ASGI and WSGI middleware.

Follows the Fetch standard's CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol):

- A request without ``Origin`` is not a CORS request and passes through untouched.
- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
  by the middleware, never by the app: 204 with the allowed origin, methods, headers and
  max-age, or 400 if the origin, the method or one of the requested headers is not allowed —
  the browser then refuses the actual request, and the 400 tells a developer reading the
  network tab why.
- Other requests from an allowed origin get ``Access-Control-Allow-Origin`` (and
  ``-Allow-Credentials``) added to the app's response; from other origins, nothing is added.
- Responses that depend on the origin carry ``Vary: Origin``, so caches keep them apart.
- CORS-safelisted methods (GET, HEAD, POST) and request headers (Accept, Accept-Language,
  Content-Language, Content-Type) are always allowed, as browsers do not ask for them.
- Credentials never go with the ``*`` wildcard (the standard forbids it): ``Config`` refuses
  that combination (``config.rules.check_credentials``), and so does the policy.

Headers here are ``(name, value)`` pairs of ``str`` (WSGI's native form) with lowercase
names (ASGI's); the ASGI middleware encodes at its edge, so both answer with the same lines.
"""

from __future__ import annotations

from typing import Any, Iterable

from treadle.server.config.rules import check_credentials, comma_items

SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})


class CORSPolicy:
    def __init__(
        self,
        allow_origins: Iterable[str],
        allow_methods: Iterable[str] = SAFELISTED_METHODS,
        allow_headers: Iterable[str] = (),
        allow_credentials: bool = False,
        max_age: int = 600,
    ) -> None:
        # Options may be repeated or comma-separated: ``--cors-allow-methods GET,PUT``.
        origins = comma_items(allow_origins)
        methods = [m.upper() for m in comma_items(allow_methods)]
        headers = [h.lower() for h in comma_items(allow_headers)]
        self.any_origin = "*" in origins
        self.any_method = "*" in methods
        self.any_header = "*" in headers
        check_credentials(origins, allow_credentials)
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self.methods = frozenset(methods) | SAFELISTED_METHODS
        self.headers = frozenset(headers) | SAFELISTED_HEADERS
        self.credentials = allow_credentials
        self.max_age = max_age
        self._methods_line = ", ".join(sorted(self.methods))
        # With a plain ``*`` the answer is the same for every origin, so caches need not split.
        self._varies = not (self.any_origin and not allow_credentials)

    @classmethod
    def from_config(cls, config: Any) -> CORSPolicy | None:
        """The policy ``--cors-*`` options describe, or None when CORS is off."""
        if not config.cors_allow_origins:
            return None
        return cls(
            allow_origins=config.cors_allow_origins,
            allow_methods=config.cors_allow_methods,
            allow_headers=config.cors_allow_headers,
            allow_credentials=config.cors_allow_credentials,
            max_age=config.cors_max_age,
        )

    def origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def preflight(self, origin: str, method: str, requested: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
        """The whole answer to a preflight: status, headers and body."""
        wanted = [h.strip().lower() for h in (requested or "").split(",") if h.strip()]
        if not self.origin_allowed(origin):
            problem = "origin"
        elif not (self.any_method or method in self.methods):
            problem = "method"
        elif not (self.any_header or all(h in self.headers for h in wanted)):
            problem = "headers"
        else:
            problem = None
        headers = [("vary", "Origin")]
        if problem is not None:
            body = f"Disallowed CORS {problem}\n".encode()
            headers += [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))]
            return 400, headers, body
        headers += self._allow_origin_headers(origin)
        headers.append(("access-control-allow-methods", method if self.any_method else self._methods_line))
        if wanted:
            headers.append(("access-control-allow-headers", ", ".join(wanted)))
        headers.append(("access-control-max-age", str(self.max_age)))
        return 204, headers, b""

    def response_headers(self, origin: str, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """An actual response's headers from the app, with what ``origin`` should get added."""
        headers = list(headers)
        if self.origin_allowed(origin):
            headers += self._allow_origin_headers(origin)
        if self._varies:
            _add_vary_origin(headers)
        return headers

    def _allow_origin_headers(self, origin: str) -> list[tuple[str, str]]:
        if self.any_origin and not self.credentials:
            return [("access-control-allow-origin", "*")]
        headers = [("access-control-allow-origin", origin)]
        if self.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        return headers


def _add_vary_origin(headers: list[tuple[str, str]]) -> None:
    for index, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            tokens = {t.strip().lower() for t in value.split(",")}
            if "origin" not in tokens and "*" not in tokens:
                headers[index] = (name, value + ", Origin")
            return
    headers.append(("vary", "Origin"))
