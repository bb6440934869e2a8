"""``--cors-allow-origin`` for WSGI apps: ``CORSPolicy`` (``server/apps/cors_policy.py``) around a
PEP 3333 callable, so WSGI and ASGI apps get the same CORS answers.

A preflight never reaches the app: the middleware calls ``start_response`` with the
policy's answer and returns its body. For other requests from an ``Origin`` it wraps
``start_response`` and adds the policy's headers there — the only place a WSGI response's
headers can be changed without buffering the body. ``exc_info`` is passed on unchanged,
so an app replacing its headers after an error gets the CORS headers on the new ones too.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable, Iterable

from treadle.server.apps.cors_policy import CORSPolicy

StartResponse = Callable[..., Any]


class WSGICORSMiddleware:
    def __init__(self, app: Callable[[dict, StartResponse], Iterable[bytes]], policy: CORSPolicy) -> None:
        self.app = app
        self.policy = policy

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if origin is None:
            return self.app(environ, start_response)
        request_method = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if environ["REQUEST_METHOD"] == "OPTIONS" and request_method is not None:
            requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
            status, headers, body = self.policy.preflight(origin, request_method, requested)
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [body]

        def cors_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, self.policy.response_headers(origin, headers), exc_info)

        return self.app(environ, cors_start_response)
