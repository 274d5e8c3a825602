"""A Datadog logs intake emulator on 127.0.0.1, answering as the v2 intake does.

It implements what the Datadog Logs sink uses, by Datadog's documented formats and answers:

- ``POST /api/v2/logs``: key in ``DD-API-KEY`` (``401`` without one, ``403`` for a key it does
  not know); gzip or deflate bodies (``Content-Encoding``); ``413`` over 5 MB uncompressed;
  ``400`` for a body that is not a JSON object or array of objects, or an array over 1,000
  entries; ``202 {}`` otherwise. As Datadog does, it accepts a log over 1 MB but keeps it
  truncated (``intake_truncated``), and does not index a log whose ``timestamp`` (epoch
  milliseconds) is more than 18 hours old (``dropped_late``).
- ``GET /api/v1/validate``: ``200 {"valid": true}`` for a known key, ``403`` otherwise.

By hand: ``python -m devservices.datadog_receiver --api-key K`` prints the URL (use it as a
destination's ``endpoint``) and serves until SIGTERM or Ctrl-C.

Tests read what was kept (``logs``, ``deliveries``) and inject failures through
:class:`devservices.collector_server.CollectorServer` (``fail_next``, ``set_answer``,
``stop``/``restart`` for an outage). One receiver per site: a wrong-site test gives each its
own keys.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from .collector_server import Answer, CollectorServer, Request, serve_until_signal

INTAKE_PATH = "/api/v2/logs"
VALIDATE_PATH = "/api/v1/validate"
MAX_ENTRIES = 1000
MAX_PAYLOAD_BYTES = 5_000_000
MAX_ENTRY_BYTES = 1_000_000
MAX_AGE_MS = 18 * 3600 * 1000
CHECK_TAG = "auditstream_check:true"


class DatadogReceiver(CollectorServer):
    """A logs intake for tests that knows ``api_keys``; ``clock`` (epoch s) judges late logs."""

    def __init__(
        self,
        api_keys: Iterable[str],
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(port=port, tls=tls)
        self.api_keys = set(api_keys)
        self._clock = clock
        self.logs: list[dict[str, Any]] = []
        """Every log kept, in arrival order (repeats included)."""
        self.deliveries: list[tuple[str, ...]] = []
        """The ``event_id`` of each log of each accepted request, in arrival order."""
        self.dropped_late = 0
        self.intake_truncated = 0
        self.wire_bytes = 0
        self.body_bytes = 0

    @property
    def url(self) -> str:
        """The origin to use as a destination's ``endpoint``."""
        return self.base_url

    # -- what was kept -----------------------------------------------------------------------

    def event_ids(self) -> list[str]:
        """The ``event_id`` of every kept log (check logs left out), repeats included."""
        with self.lock:
            return [str(log.get("event_id")) for log in self.logs if not _is_check(log)]

    def unique_event_ids(self) -> set[str]:
        return set(self.event_ids())

    def check_logs(self) -> list[dict[str, Any]]:
        with self.lock:
            return [log for log in self.logs if _is_check(log)]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` distinct events were kept; ``False`` on timeout."""
        with self.lock:
            return self.lock.wait_for(
                lambda: len({log.get("event_id") for log in self.logs}) >= count,
                timeout=timeout,
            )

    # -- answers -----------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        if request.path == VALIDATE_PATH and request.method == "GET":
            if request.headers.get("dd-api-key") in self.api_keys:
                return Answer(200, {"valid": True})
            return Answer(403, {"errors": ["Forbidden"]})
        if request.path != INTAKE_PATH:
            return Answer(404, {"errors": ["Not found"]})
        if request.method != "POST":
            return Answer(405, {"errors": ["Method not allowed"]})
        key = request.headers.get("dd-api-key")
        if not key:
            return Answer(401, {"errors": ["Unauthorized"]})
        if key not in self.api_keys:
            return Answer(403, {"errors": ["Forbidden"]})
        return self._intake(request)

    def _intake(self, request: Request) -> Answer:
        body = request.body
        if body is None:
            return Answer(400, {"errors": ["Bad Request: the body does not decompress"]})
        if len(body) > MAX_PAYLOAD_BYTES:
            return Answer(413, {"errors": ["Payload too large"]})
        try:
            parsed = json.loads(body)
        except ValueError:
            return Answer(400, {"errors": ["Bad Request: not JSON"]})
        items = parsed if isinstance(parsed, list) else [parsed]
        if len(items) > MAX_ENTRIES or not all(isinstance(i, dict) for i in items):
            return Answer(400, {"errors": ["Bad Request: at most 1000 log objects"]})
        kept = [log for log in (self._accept(i) for i in items) if log is not None]
        with self.lock:
            self.received += len(kept)
            if self.keep:
                self.logs.extend(kept)
                ids = tuple(str(log.get("event_id")) for log in kept if not _is_check(log))
                if ids:
                    self.deliveries.append(ids)
            self.wire_bytes += request.wire_bytes
            self.body_bytes += len(body)
            self.lock.notify_all()
        return Answer(202, {})

    def _accept(self, log: dict[str, Any]) -> dict[str, Any] | None:
        """The log as kept, or None when Datadog would not index it (too old)."""
        stamp = log.get("timestamp")
        if isinstance(stamp, int | float) and stamp < self._clock() * 1000 - MAX_AGE_MS:
            with self.lock:
                self.dropped_late += 1
            return None
        size = len(json.dumps(log, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_ENTRY_BYTES:
            with self.lock:
                self.intake_truncated += 1
            return {**log, "message": str(log.get("message", ""))[:1000], "_truncated": True}
        return log


def _is_check(log: dict[str, Any]) -> bool:
    return CHECK_TAG in str(log.get("ddtags", "")).split(",")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.datadog_receiver",
        description="Serve a Datadog logs intake emulator on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", action="append", required=True, help="a key it accepts")
    parser.add_argument(
        "--count-only", action="store_true", help="count logs instead of keeping them"
    )
    args = parser.parse_args(argv)
    receiver = DatadogReceiver(args.api_key, port=args.port)
    receiver.keep = not args.count_only
    return serve_until_signal(receiver)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["DatadogReceiver"]
