"""A raw HTTP/2 client for the tests: ``h2`` in the client role over a blocking socket, so a
test can send exactly the frames it wants (well-behaved or not) and see every frame's effect.

``H2Client(port)`` connects with prior knowledge (or ``tls=context`` for ALPN ``h2``), sends
the preface and SETTINGS, and reads the server's. ``request()`` opens a stream; ``response()``
collects one stream's response; ``events()`` reads until a predicate holds. Raw frames go
through ``send_raw`` (hyperframe's ``serialize()``).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from loadtests.attack.h2_attacks import FrameBuffer


class Response:
    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.trailers: list[tuple[bytes, bytes]] = []
        self.ended = False
        self.reset_code: int | None = None
        self.informational: list[list[tuple[bytes, bytes]]] = []

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class _ClientConnection(h2.connection.H2Connection):
    """h2 as a client that goes on with its streams after a graceful GOAWAY, as RFC 9113 6.8
    says it may: h2 closes its state machine to every later frame (python-hyper/h2 issue 1199)."""

    def _receive_goaway_frame(self, frame: Any) -> Any:
        result = super()._receive_goaway_frame(frame)
        if frame.error_code == 0:
            self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return result


class H2Client:
    def __init__(
        self,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        settings: dict[int, int] | None = None,
        timeout: float = 5.0,
        auto_window: bool = True,
    ) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
        self.sock = sock
        self.timeout = timeout
        self.auto_window = auto_window  # give back window for body as it is read
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = _ClientConnection(config=config)
        if settings:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        self.conn.initiate_connection()
        self.responses: dict[int, Response] = {}
        self.uploads: dict[int, list] = {}  # stream id: [body still to send, end the stream after]
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self.all_events: list[Any] = []
        self.flush()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.flush()
        self.sock.sendall(data)

    def request(
        self,
        path: str = "/",
        method: str = "GET",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        end: bool = True,
        authority: str = "localhost",
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "https"), (":authority", authority)]
        fields += headers or []
        encoded = [(n.encode(), v.encode()) for n, v in fields]
        self.conn.send_headers(stream_id, encoded, end_stream=end and not body)
        self.responses[stream_id] = Response()
        if body:
            self.uploads[stream_id] = [body, end]
            self._upload()
        self.flush()
        return stream_id

    def _upload(self) -> None:
        """Send queued request bodies as far as the windows and the frame size allow."""
        for stream_id, pending in list(self.uploads.items()):
            body, end = pending
            while body:
                room = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
                if room <= 0:
                    break
                self.conn.send_data(stream_id, body[:room])
                body = body[room:]
            pending[0] = body
            if not body:
                del self.uploads[stream_id]
                if end:
                    self.conn.end_stream(stream_id)

    # -- receiving ----------------------------------------------------------------------------

    def _read(self, deadline: float) -> bool:
        """Read once and handle the events; False when the server closed."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            events = []
        for event in events:
            self.all_events.append(event)
            self._handle(event)
        if self.uploads:
            self._upload()
        self.flush()
        return True

    def _handle(self, event: Any) -> None:
        kind = type(event)
        response = self.responses.get(getattr(event, "stream_id", None))
        if kind is h2.events.ResponseReceived:
            response.status = int(dict(event.headers)[b":status"])
            response.headers = [(n, v) for n, v in event.headers if not n.startswith(b":")]
        elif kind is h2.events.InformationalResponseReceived:
            response.informational.append(list(event.headers))
        elif kind is h2.events.DataReceived:
            response.body += event.data
            if self.auto_window:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif kind is h2.events.TrailersReceived:
            response.trailers = list(event.headers)
        elif kind is h2.events.StreamEnded:
            response.ended = True
        elif kind is h2.events.StreamReset:
            if response is not None:
                response.reset_code = event.error_code
        elif kind is h2.events.ConnectionTerminated:
            self.goaway = event

    def events_until(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout or self.timeout} s")
            if not self._read(deadline) and not done():
                raise ConnectionError("the server closed the connection")

    def response(self, stream_id: int, timeout: float | None = None) -> Response:
        response = self.responses[stream_id]
        self.events_until(lambda: response.ended or response.reset_code is not None, timeout)
        return response

    def read_until_closed(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._read(deadline):
            if time.monotonic() > deadline:
                raise AssertionError("the server did not close the connection")


class RawH2:
    """An HTTP/2 peer that keeps no protocol state: frames out exactly as built, frames in as
    parsed, for what a well-behaved client never sends (too many streams, floods)."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        from hpack import Encoder
        from hyperframe.frame import SettingsFrame

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.encoder = Encoder()
        self.received = FrameBuffer()  # what the server sent, not yet taken as frames
        self.next_stream = 1
        self.closed = False  # the server closed the connection (seen by ``frames``)
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawH2:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def header_block(self, path: str = "/", method: str = "GET") -> bytes:
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost")]
        return self.encoder.encode(fields)

    def headers(self, path: str = "/", end_stream: bool = True, stream_id: int | None = None) -> int:
        from hyperframe.frame import HeadersFrame

        if stream_id is None:
            stream_id, self.next_stream = self.next_stream, self.next_stream + 2
        frame = HeadersFrame(stream_id, self.header_block(path))
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        self.send(frame)
        return stream_id

    def send(self, *frames: Any) -> None:
        self.sock.sendall(b"".join(frame.serialize() for frame in frames))

    def frames(self, until: Callable[[Any], bool], timeout: float = 5.0) -> list[Any]:
        """Frames from the server until one satisfies ``until`` (included) or it closes."""
        seen: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            if self.received.take(until, seen):
                return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such frame within {timeout} s; saw {seen[-10:]}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                return seen
            self.received.data += data


class H2WebSocket:
    """A WebSocket over HTTP/2 (RFC 8441) on an ``H2Client``: an extended CONNECT, then wsproto's
    frames (a frames-only ``Connection``) in the stream's DATA frames."""

    def __init__(
        self,
        client: H2Client,
        path: str = "/",
        headers: list[tuple[str, str]] | None = None,
        deflate: bool = False,
    ) -> None:
        from wsproto import ConnectionType
        from wsproto.connection import Connection
        from wsproto.extensions import PerMessageDeflate

        self.client = client
        client.events_until(lambda: client.conn.remote_settings.enable_connect_protocol == 1)
        fields = [(":protocol", "websocket"), ("sec-websocket-version", "13")]
        if deflate:
            self._deflate = PerMessageDeflate()
            fields.append(("sec-websocket-extensions", f"{self._deflate.name}; {self._deflate.offer()}"))
        else:
            self._deflate = None
        fields += headers or []
        self.stream_id = client.request(path, method="CONNECT", headers=fields, end=False)
        self.response = client.responses[self.stream_id]
        self._connection = Connection
        self._client_type = ConnectionType.CLIENT
        self.ws: Any = None
        self._taken = 0  # bytes of the response body already given to wsproto

    def handshake(self, timeout: float | None = None) -> Response:
        """The server's answer to the CONNECT (its HEADERS; a denial's body too, if it ended)."""
        response = self.response
        self.client.events_until(
            lambda: response.status is not None or response.reset_code is not None or response.ended, timeout
        )
        if response.status == 200:
            extensions = []
            agreed = response.header(b"sec-websocket-extensions")
            if agreed is not None and self._deflate is not None:
                self._deflate.finalize(agreed.decode())
                extensions = [self._deflate]
            self.ws = self._connection(self._client_type, extensions=extensions)
        return response

    def send(self, event: Any) -> None:
        self.client.conn.send_data(self.stream_id, self.ws.send(event))
        self.client.flush()

    def events(self, done: Callable[[list[Any]], bool], timeout: float | None = None) -> list[Any]:
        """wsproto's events from what the server sent, until ``done(events)``."""
        seen: list[Any] = []

        def ready() -> bool:
            body = self.response.body
            if len(body) > self._taken:
                self.ws.receive_data(body[self._taken :])
                self._taken = len(body)
                seen.extend(self.ws.events())
            return done(seen) or self.response.ended or self.response.reset_code is not None

        self.client.events_until(ready, timeout)
        return seen
