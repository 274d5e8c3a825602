"""A real HTTP webhook receiver on 127.0.0.1 that verifies auditstream's signatures.

It behaves as a well-mannered SIEM endpoint: it verifies every POST's signature over the raw
body (``401`` when invalid; with ``signing="standard_webhooks"`` the ``standardwebhooks``
package's ``Webhook(secret).verify`` checks the Standard Webhooks headers instead), parses JSON
array or NDJSON bodies by ``Content-Type``, and drops repeated ``Idempotency-Key`` values
(answering ``200`` without counting them again). Tests can make it fail on demand: the next
``n`` requests with a status (and ``Retry-After``), every request with a status, or slow
answers.

By hand::

    python -m devservices.webhook_receiver --port 8099 --secret s3cret
    python -m devservices.webhook_receiver --signing standard_webhooks --secret whsec_...

prints the URL and serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Literal

from auditstream.sinks.signature import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)

from .local_process import StopOnExit

HOST = "127.0.0.1"
_MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Delivery:
    """One request that passed signature verification and parsing."""

    idempotency_key: str | None
    event_ids: tuple[str, ...]
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    duplicate: bool = False
    body: bytes = b""
    """The raw request body."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections must not make stop() wait for the client to hang up.
    block_on_close = False

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__((HOST, receiver.requested_port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and closed its connection is expected (set_delay); other
        # errors go to stderr as usual.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30.0  # idle keep-alive connections end after this long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._answer(411, {"error": "Content-Length required"})
            return
        length = int(length_header)
        if length > _MAX_BODY_BYTES:
            self._answer(413, {"error": "body too large"})
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if len(body) < length:
            # The sender went away mid-body (a worker killed with SIGKILL): a broken connection,
            # not a request; a real receiver never sees it either.
            self.close_connection = True
            return
        headers = {name: value for name, value in self.headers.items()}
        status, retry_after, payload = receiver._handle(headers, body)
        extra = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        self._answer(status, payload, extra)

    def _answer(
        self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _parse_events(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """The events of a body; raises ``ValueError`` when the body does not fit its type."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-ndjson":
        items = [json.loads(line) for line in body.splitlines() if line.strip()]
    elif media_type == "application/json":
        parsed = json.loads(body)
        if not isinstance(parsed, list):
            raise ValueError("a JSON body must be an array of events")
        items = parsed
    else:
        raise ValueError(f"unsupported content type {content_type!r}")
    events: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("event_id"), str):
            raise ValueError("every event must be an object with a string event_id")
        events.append(item)
    return events


class WebhookReceiver(StopOnExit):
    """A webhook endpoint for tests, served from a background thread.

    ``with WebhookReceiver(secret) as receiver:`` starts it; POST to ``receiver.url``. All
    counters and lists are guarded by one lock and safe to read from the test thread.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        port: int = 0,
        tolerance_s: float = 300.0,
        signing: Literal["auditstream", "standard_webhooks"] = "auditstream",
    ) -> None:
        self.secret = secret
        self.signing = signing
        self.requested_port = port
        self.tolerance_s = tolerance_s
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._requests = 0
        self._bad_signatures = 0
        self._duplicate_deliveries = 0
        self._all_event_ids: list[str] = []
        self._events: dict[str, dict[str, Any]] = {}
        self._deliveries: list[Delivery] = []
        self._accepted_keys: set[str] = set()
        self._fail_remaining = 0
        self._fail_status = 503
        self._fail_retry_after: float | None = None
        self._forced_status: int | None = None
        self._delay = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        """Bind 127.0.0.1 (a free port unless one was given) and serve in a background thread."""
        if self._server is not None:
            return self
        server = _Server(self)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.name = f"webhook-receiver-{server.server_address[1]}"
        self._server = server
        self._thread = thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> WebhookReceiver:
        """Start serving; leaving the ``with`` block stops it."""
        return self.start()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/events``."""
        return f"http://{HOST}:{self.port}/events"

    # -- failure injection -------------------------------------------------------------------

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (and ``Retry-After: retry_after``)
        before looking at them. Replaces any earlier ``fail_next``."""
        with self._cond:
            self._fail_remaining = n
            self._fail_status = status
            self._fail_retry_after = retry_after

    def set_delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request (0 to stop)."""
        with self._cond:
            self._delay = max(0.0, seconds)

    def set_status(self, status: int | None) -> None:
        """Answer every request with ``status`` until called with ``None``."""
        with self._cond:
            self._forced_status = status

    # -- what was received -------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Every POST received, whatever the answer."""
        with self._cond:
            return self._requests

    @property
    def bad_signatures(self) -> int:
        with self._cond:
            return self._bad_signatures

    @property
    def duplicate_deliveries(self) -> int:
        """Requests whose ``Idempotency-Key`` had already been accepted."""
        with self._cond:
            return self._duplicate_deliveries

    @property
    def all_event_ids(self) -> list[str]:
        """Event ids of every accepted request in arrival order, duplicates included."""
        with self._cond:
            return list(self._all_event_ids)

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """Events by ``event_id`` (the last one seen), from non-duplicate requests."""
        with self._cond:
            return dict(self._events)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every request that passed verification and parsing, in arrival order."""
        with self._cond:
            return list(self._deliveries)

    def unique_event_ids(self) -> set[str]:
        with self._cond:
            return set(self._events)

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` distinct events were received; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._events) >= count, timeout=timeout)

    # -- request handling (called from the server's threads) ---------------------------------

    def _verified(self, headers: dict[str, str], lowered: dict[str, str], body: bytes) -> bool:
        """Whether the request's signature headers are valid for ``body``."""
        if self.signing == "standard_webhooks":
            # The outside reference: the Standard Webhooks package (its fixed 5-minute
            # tolerance applies, not ``tolerance_s``).
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError

            try:
                Webhook(self.secret.decode("utf-8")).verify(body, headers, json_parse=False)
            except (WebhookVerificationError, ValueError):  # ValueError: bad base64
                return False
            return True
        return verify(
            self.secret,
            lowered.get(TIMESTAMP_HEADER.lower()),
            lowered.get(SIGNATURE_HEADER.lower()),
            body,
            now=time.time(),
            tolerance_s=self.tolerance_s,
        )

    def _handle(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, float | None, dict[str, Any]]:
        """Status, ``Retry-After`` and JSON answer for one POST."""
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._cond:
            self._requests += 1
            delay = self._delay
            forced = self._forced_status
            injected: tuple[int, float | None] | None = None
            if forced is None and self._fail_remaining > 0:
                self._fail_remaining -= 1
                injected = (self._fail_status, self._fail_retry_after)
        if delay > 0:
            time.sleep(delay)
        if forced is not None:
            return forced, None, {"error": "status set by the test"}
        if injected is not None:
            return injected[0], injected[1], {"error": "failure injected by the test"}

        if not self._verified(headers, lowered, body):
            with self._cond:
                self._bad_signatures += 1
            return 401, None, {"error": "invalid signature"}

        content_type = lowered.get("content-type", "")
        try:
            events = _parse_events(content_type, body)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return 400, None, {"error": str(exc)}

        key = lowered.get(IDEMPOTENCY_HEADER.lower())
        event_ids = tuple(str(event["event_id"]) for event in events)
        with self._cond:
            duplicate = key is not None and key in self._accepted_keys
            self._all_event_ids.extend(event_ids)
            self._deliveries.append(
                Delivery(
                    idempotency_key=key,
                    event_ids=event_ids,
                    content_type=content_type,
                    headers=dict(headers),
                    duplicate=duplicate,
                    body=body,
                )
            )
            if duplicate:
                self._duplicate_deliveries += 1
            else:
                if key is not None:
                    self._accepted_keys.add(key)
                for event in events:
                    self._events[str(event["event_id"])] = event
                self._cond.notify_all()
        return 200, None, {"accepted": len(events), "duplicate": duplicate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.webhook_receiver",
        description="Serve a signature-verifying webhook receiver on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--secret", required=True, help="the destination's signing secret")
    parser.add_argument(
        "--signing",
        choices=("auditstream", "standard_webhooks"),
        default="auditstream",
        help="the destination's signing scheme (default: auditstream)",
    )
    args = parser.parse_args(argv)

    receiver = WebhookReceiver(args.secret.encode("utf-8"), port=args.port, signing=args.signing)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver.start()
    print(receiver.url, flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        receiver.stop()
        print(
            f"requests={receiver.requests} events={len(receiver.unique_event_ids())} "
            f"duplicates={receiver.duplicate_deliveries} "
            f"bad_signatures={receiver.bad_signatures}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Delivery", "WebhookReceiver"]
