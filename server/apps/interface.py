"""Which protocol an app speaks — ASGI 3, ASGI 2 or WSGI — and the ASGI 2 → 3 adapter.

``--interface auto`` decides from the callable itself, as uvicorn does, plus the arity
rule that tells WSGI apart:

* a coroutine function (or an object whose ``__call__`` is one), or a class whose instances
  are awaitable → ASGI 3: ``await app(scope, receive, send)``;
* otherwise count the positional parameters a call needs (a class: its ``__init__``'s):
  1 → ASGI 2, ``app(scope)`` returns the instance to ``await instance(receive, send)``;
  2 → WSGI, ``app(environ, start_response)``; 3 → ASGI 3 (a plain function returning an
  awaitable, as some decorators make).

Anything else (``*args`` only, a C callable without a signature, a wrapper that hides its
arity) is refused with an error naming the flag to pass, rather than guessed: a wrong
guess fails on the first request instead of at startup.
"""

from __future__ import annotations

import inspect
from typing import Any

from treadle.server.types import Receive, Scope, Send


class InterfaceError(Exception):
    """The app's interface cannot be determined (or is not one we serve)."""


def detect_interface(app: Any) -> str:
    """``"asgi3"``, ``"asgi2"`` or ``"wsgi"`` for ``app``; raises ``InterfaceError`` if unclear."""
    if inspect.isclass(app):
        if hasattr(app, "__await__"):
            return "asgi3"
    elif inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):
        return "asgi3"
    # inspect.signature reads a class's __init__ and an instance's __call__ without ``self``,
    # and sees through functools.partial.
    arity = _positional_arity(app)
    interface = {1: "asgi2", 2: "wsgi", 3: "asgi3"}.get(arity) if arity is not None else None
    if interface is None:
        reason = "its signature is unreadable" if arity is None else f"it takes {arity} positional arguments"
        raise InterfaceError(
            f"Cannot tell whether {app!r} is an ASGI 3, ASGI 2 or WSGI application ({reason}). "
            "Pass --interface asgi3, --interface asgi2 or --interface wsgi (interface=... in Config)."
        )
    return interface


def _positional_arity(app: Any) -> int | None:
    """How many positional arguments a call needs; None if ``*args`` or no signature hides it."""
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return None
    required = 0
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            return None
        positional = parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        if positional and parameter.default is parameter.empty:
            required += 1
    return required


class ASGI2Middleware:
    """Serves an ASGI 2 ("double callable") app as ASGI 3."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)
