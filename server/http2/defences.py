"""What an HTTP/2 connection (server/http2/connection.py) holds a client to, beyond what h2
checks: budgets for resets and control frames, and the request-body deadline.

- **Budgets** (docs/http2.md): resets the client sends (Rapid Reset, CVE-2023-44487) or makes
  the server send (MadeYouReset, CVE-2025-8671), and streams refused because too many apps
  still run, are charged to ``--h2-max-resets``; PING, SETTINGS and PRIORITY frames to
  ``--h2-max-control-frames`` (token buckets: server/http2/budget.py). ``FrameGuard`` charges
  frames as their headers arrive, before h2 parses them; the connection charges what h2's
  events tell. Past a budget the connection ends with GOAWAY ENHANCE_YOUR_CALM.
- **The body deadline** (``--timeout-request-body``, as on HTTP/1.1): a stream whose client
  owes body, has window to send it, and sends none for that long is answered 408.

A mixin: the connection holds the state, this part judges it.
"""

from __future__ import annotations

from typing import Any

from h2.errors import ErrorCodes

from treadle.server.http2.stream import Stream
from treadle.server.observe.logging import error_logger

BUDGET_PERIOD = 10.0  # seconds over which --h2-max-resets and --h2-max-control-frames are counted


class Defences:
    """Budgets and the body deadline of one connection (reactor thread)."""

    resets: Any  # Budget
    control_frames: Any  # Budget
    streams: dict[int, Stream]
    client: tuple[str, int] | None
    config: Any
    loop: Any
    _over_budget: bool
    _closed: bool
    _body_timer: Any

    # -- budgets -------------------------------------------------------------------------------

    def _charge_reset(self) -> bool:
        """A reset the client sent or provoked: False once over the budget (the connection ends)."""
        if not self.resets.spend():
            if not self._over_budget:
                error_logger.warning("HTTP/2 client %s over the reset budget (--h2-max-resets).", self.client)
            self._over_budget = True
        return not self._over_budget

    def _control_frame(self) -> bool:
        if not self.control_frames.spend():
            if not self._over_budget:
                error_logger.warning(
                    "HTTP/2 client %s over the control-frame budget (--h2-max-control-frames).", self.client
                )
            self._over_budget = True
        return not self._over_budget

    # -- the body deadline ---------------------------------------------------------------------

    def _check_bodies(self) -> None:
        """``--timeout-request-body``, as on HTTP/1.1: a stream whose client has owed body for
        that long — with window to send it, and asked for it (``Expect: 100-continue``
        answered) — is answered 408. A stream whose app is behind (its window not given back)
        is not the client's delay. Runs while any stream still expects body."""
        self._body_timer = None
        if self._closed:
            return
        timeout = self.config.timeout_request_body
        now = self.loop.time()
        next_check = None
        for stream in list(self.streams.values()):
            if stream.request_ended or stream.closed or stream.exchange is None or stream.tunnel:
                continue
            if stream.unacked or stream.expect_100:
                due = now + timeout  # not the client's turn: looked at again later
            elif stream.body_at + timeout <= now:
                error_logger.debug("HTTP/2 client %s: no body on stream %d for %s s", self.client, stream.id, timeout)
                self._fail_body(stream, 408)
                continue
            else:
                due = stream.body_at + timeout
            next_check = due if next_check is None else min(next_check, due)
        if next_check is not None:
            self._body_timer = self.loop.call_at(next_check, self._check_bodies)
        self._output()

    def _fail_body(self, stream: Stream, status: int) -> None:
        """The stream's body will not be taken (too large, or stalled): its app learns the
        client is gone; the client gets ``status`` if nothing of a response has gone yet,
        else RST_STREAM CANCEL (either way the stream's end asks it to stop sending)."""
        stream.exchange.disconnect()
        if stream.head is not None or not stream.status:
            self.reject(stream, status)
        else:
            self.log_stream(stream)
            self.reset(stream, ErrorCodes.CANCEL)
