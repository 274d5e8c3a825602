"""The HTTP server on a process's metrics port: ``/metrics`` (Prometheus), ``/healthz``
(the process is alive: 200 while it serves) and ``/readyz`` (200 when its
:class:`pipeline.readiness.Readiness` says ready, 503 otherwise; a JSON body says why).

prometheus_client's own server serves metrics only; this one is a ``ThreadingHTTPServer`` on a
daemon thread, stopped and joined by :meth:`HealthServer.close`.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from auditstream.pipeline.log import Log
from auditstream.pipeline.readiness import DEFAULT_STALE_AFTER_S, ObservedLog, Readiness

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/readyz":
            readiness = self.server.readiness
            if readiness is None:
                body: dict[str, Any] = {"ready": True, "reasons": []}
            else:
                body = readiness.verdict().as_json()
            status = 200 if body["ready"] else 503
            self._send(status, "application/json", json.dumps(body).encode() + b"\n")
        else:
            self._send(
                404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz, /readyz\n"
            )

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not logged."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, readiness: Readiness | None
    ) -> None:
        self.registry = registry
        self.readiness = readiness
        super().__init__(address, _Handler)


class HealthServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (port 0: a free one,
    see :attr:`port`) until :meth:`close`. ``readiness`` None: ready while it serves."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Readiness | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._server = _Server((host, port), registry, readiness)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="health-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def readiness(self) -> Readiness | None:
        return self._server.readiness

    @readiness.setter
    def readiness(self, value: Readiness | None) -> None:
        self._server.readiness = value

    def close(self) -> None:
        """Stop serving and join the thread; calling it again does nothing."""
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessHealth:
    """A process's :class:`Readiness` and, with a ``port``, the server of its ``/metrics``,
    ``/healthz`` and ``/readyz`` (:class:`HealthServer`), started at
    once so that ``/healthz`` answers while the log is being opened."""

    def __init__(
        self,
        host: str,
        port: int | None,
        stale_after: float = DEFAULT_STALE_AFTER_S,
        *,
        loop: bool = True,
    ) -> None:
        self.readiness = Readiness(stale_after, loop=loop)
        self.server = None if port is None else HealthServer(host, port, self.readiness)

    def observe(self, log: Log, group: str, *, poll_is_progress: bool) -> Log:
        """``log`` opened: the process is connected; its consumers of ``group`` report their
        polls (see :class:`pipeline.readiness.ObservedLog`)."""
        self.readiness.connected()
        observed = ObservedLog(log, self.readiness, group, poll_is_progress=poll_is_progress)
        return observed

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
