"""What the SIEM collector emulators share: an HTTP server on 127.0.0.1 in a background thread.

:class:`CollectorServer` binds a free port (or a given one), serves each connection on its
own thread, and hands every request to its subclass's :meth:`CollectorServer.answer`. It
can be stopped and restarted on the same port, and stopping closes every open connection too
(keep-alive included), so an outage looks to a client as a real one does: refused
connections, broken exchanges. Given an ``ssl.SSLContext``, it serves HTTPS. Tests inject
failures: the next ``n`` requests answered with a status, a body and ``Retry-After``; every
request answered so; slow answers.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import signal
import socket
import ssl
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from .local_process import StopOnExit

HOST = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the emulator sees it: ``body`` decompressed per ``Content-Encoding``
    (``None`` when it could not be), ``wire_bytes`` as received; header names lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes | None
    wire_bytes: int


@dataclass(frozen=True, slots=True)
class Answer:
    """What the emulator answers: a status, a JSON body, extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def decoded(body: bytes, encoding: str | None) -> bytes | None:
    """``body`` decompressed per ``encoding`` (gzip, deflate or none); ``None`` when it does
    not decompress or the encoding is unknown."""
    name = (encoding or "identity").strip().lower()
    try:
        if name in ("", "identity"):
            return body
        if name == "gzip":
            return gzip.decompress(body)
        if name == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error):
        return None
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: CollectorServer, port: int, tls: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)
        if tls is not None:
            # The handshake runs on the connection's thread, not in the accept loop.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        with self.connections_lock:
            self.connections.add(conn)
        return conn, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            open_now, self.connections = list(self.connections), set()
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection cut by an outage or a client that gave up is expected.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30.0
    # Headers and body go out in two writes: without this, Nagle's algorithm holds the body
    # until the client's delayed ACK (about 40 ms a response).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(Answer(411, {"text": "Content-Length required"}))
            return
        if int(length) > MAX_BODY_BYTES:
            self._send(Answer(413, {"text": "body too large"}))
            self.close_connection = True
            return
        raw = self.rfile.read(int(length))
        if len(raw) < int(length):  # the client went away mid-body: nothing was received
            self.close_connection = True
            return
        self._serve(raw)

    def _serve(self, raw: bytes) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=headers,
            body=decoded(raw, headers.get("content-encoding")),
            wire_bytes=len(raw),
        )
        self._send(self.server.owner._dispatch(request))

    def _send(self, answer: Answer) -> None:
        data = b"" if answer.payload is None else json.dumps(answer.payload).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class CollectorServer(StopOnExit):
    """A collector emulator's server part; subclasses implement :meth:`answer`.

    ``with Sub(...) as server:`` starts it. Counters are guarded by ``self.lock``.
    """

    def __init__(self, *, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.lock = threading.Condition()
        self._port = port
        self._tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._fail_remaining = 0
        self._fail_answer = Answer(503)
        self._forced: Answer | None = None
        self._delay = 0.0
        self.requests = 0
        self.received = 0
        """Events received and kept or counted (see ``keep``)."""
        self.keep = True
        """Keep what arrives for tests to read; False only counts it (long benchmarks)."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind 127.0.0.1 (the port it had before, or a free one) and serve in a thread."""
        if self._server is not None:
            return self
        server = _Server(self, self._port, self._tls)
        self._port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.name = f"{type(self).__name__}-{self._port}"
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut every open connection, release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.cut_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        """Start serving; leaving the ``with`` block stops it."""
        self.start()
        return self

    def restart(self) -> None:
        """Serve again on the same port after :meth:`stop` (what was received is kept)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the server has not started; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` when serving TLS)."""
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    # -- failure injection -------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int,
        payload: Any = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``n`` requests with ``status`` and ``payload`` (and
        ``Retry-After``) before looking at them."""
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        with self.lock:
            self._fail_remaining = n
            self._fail_answer = Answer(status, payload, headers)

    def set_answer(self, status: int | None, payload: Any = None) -> None:
        """Answer every request with ``status`` and ``payload`` until called with ``None``."""
        with self.lock:
            self._forced = None if status is None else Answer(status, payload)

    def set_delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request (0 to stop)."""
        with self.lock:
            self._delay = max(0.0, seconds)

    # -- handling ----------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Answer:
        with self.lock:
            self.requests += 1
            delay, forced = self._delay, self._forced
            injected: Answer | None = None
            if forced is None and self._fail_remaining > 0:
                self._fail_remaining -= 1
                injected = self._fail_answer
        if delay > 0:
            time.sleep(delay)
        return forced or injected or self.answer(request)

    def answer(self, request: Request) -> Answer:
        """The emulator's answer to ``request`` (called on the connection's thread)."""
        raise NotImplementedError


def serve_until_signal(server: CollectorServer) -> int:
    """Start ``server``, print its URL, serve until SIGTERM or Ctrl-C, then print what it
    received (for ``python -m devservices.<emulator>``)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(server.base_url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        print(f"requests={server.requests} received={server.received}", flush=True)
    return 0
