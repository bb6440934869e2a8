"""``--cors-allow-origin`` for ASGI apps: ``CORSPolicy`` (``server/apps/cors_policy.py``) at the
edge of an ASGI app.

The policy decides; this middleware only reads the request headers out of the scope,
sends a preflight's answer itself, and rewrites the ``http.response.start`` message of
other requests (bytes on the ASGI side, ``str`` in the policy: latin-1 either way).
"""

from __future__ import annotations

from treadle.server.apps.cors_policy import CORSPolicy
from treadle.server.types import ASGIApp, Message, Receive, Scope, Send


class CORSMiddleware:
    def __init__(self, app: ASGIApp, policy: CORSPolicy) -> None:
        self.app = app
        self.policy = policy

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
            status, headers, body = self.policy.preflight(origin, request_method, request_headers)
            await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
            await send({"type": "http.response.body", "body": body})
        else:
            await self.app(scope, receive, self._decorating(origin, send))

    def _decorating(self, origin: str, send: Send) -> Send:
        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", ())]
                message = dict(message, headers=_encode(self.policy.response_headers(origin, headers)))
            await send(message)

        return cors_send


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
