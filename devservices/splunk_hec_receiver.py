"""A Splunk HTTP Event Collector emulator on 127.0.0.1, answering as HEC does.

It implements what the Splunk HEC sink uses, by Splunk's documented formats and answers:

- ``GET /services/collector/health``: ``200 {"text":"HEC is healthy","code":17}``, ``503`` code
  18 when set unhealthy; with a token, ``400`` code 21 (unknown) or 22 (disabled).
- ``POST /services/collector/event``: ``Authorization: Splunk <token>`` (``401`` code 2 without
  it, code 3 malformed, ``403`` code 4 unknown, code 1 disabled; ``400`` code 16 for a token in
  the query); gzip bodies (``Content-Encoding``); bodies over ``max_content_length`` (after
  decompression) ``413``; concatenated JSON event objects: ``400`` code 5 for none, code 6 for
  one that does not parse, 12 without ``event``, 13 with a blank one, 7 for an index the token
  may not write to, each with ``invalid-event-number`` and, as Splunk does, the events before
  the bad one indexed. A token with indexer acknowledgement needs a channel (header
  ``X-Splunk-Request-Channel`` or query ``channel``: code 10 without, 11 not a GUID) and
  gets an ``ackId``.
- ``POST /services/collector/ack``: ``{"acks": [ids]}`` answered ``{"acks": {"id": bool}}``; an
  id reported true is forgotten; ``400`` code 14 for a token without acknowledgement.
  ``ack_delay_s`` delays confirmations; ``lose_acks`` never confirms (a restarted indexer).

By hand: ``python -m devservices.splunk_hec_receiver --token T [--ack-token T2]`` prints
the URL and serves until SIGTERM or Ctrl-C.

Tests read what was indexed (``events``, ``deliveries``) and inject failures through
:class:`devservices.collector_server.CollectorServer` (``fail_next``, ``set_answer``,
``stop``/``restart`` for an outage).
"""

from __future__ import annotations

import argparse
import itertools
import json
import ssl
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .collector_server import Answer, CollectorServer, Request, serve_until_signal

EVENT_PATHS = ("/services/collector/event", "/services/collector/event/1.0", "/services/collector")
ACK_PATH = "/services/collector/ack"
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
CHECK_FIELD = "auditstream_check"


def hec(code: int, text: str, status: int, **extra: Any) -> Answer:
    """A HEC answer: ``{"text": ..., "code": ...}`` and any extra members."""
    return Answer(status, {"text": text, "code": code, **extra})


@dataclass
class HecToken:
    """A token as HEC configures one."""

    indexes: tuple[str, ...] = ("main",)
    """Indexes it may write to; the first is its default index."""
    ack: bool = False
    disabled: bool = False


@dataclass
class _Channel:
    next_id: int = 0
    pending: dict[int, float] = field(default_factory=dict)
    """ackId -> when (monotonic) it is confirmed."""


class SplunkHecReceiver(CollectorServer):
    """A HEC for tests; ``token`` is its first token (see :meth:`add_token` for more)."""

    def __init__(
        self,
        token: str,
        *,
        indexes: Iterable[str] = ("main",),
        ack: bool = False,
        max_content_length: int = 1_000_000,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(port=port, tls=tls)
        self.tokens: dict[str, HecToken] = {}
        self.max_content_length = max_content_length
        self.healthy = True
        self.ack_delay_s = 0.0
        self.lose_acks = False
        self._channels: dict[tuple[str, str], _Channel] = {}
        self.events: list[dict[str, Any]] = []
        """Every event object indexed, in arrival order (repeats included)."""
        self.deliveries: list[tuple[str, ...]] = []
        """The event ids of each accepted request, in arrival order."""
        self.wire_bytes = 0
        self.body_bytes = 0
        self.add_token(token, indexes=indexes, ack=ack)

    def add_token(
        self,
        token: str,
        *,
        indexes: Iterable[str] = ("main",),
        ack: bool = False,
        disabled: bool = False,
    ) -> None:
        with self.lock:
            self.tokens[token] = HecToken(tuple(indexes), ack=ack, disabled=disabled)

    @property
    def url(self) -> str:
        """The HEC base URL (a destination's ``url``)."""
        return self.base_url

    # -- what was indexed --------------------------------------------------------------------

    def event_ids(self) -> list[str]:
        """The ``event_id`` of every indexed event (check events left out), repeats included."""
        with self.lock:
            return [_event_id(e) for e in self.events if not _is_check(e)]

    def unique_event_ids(self) -> set[str]:
        return set(self.event_ids())

    def check_events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if _is_check(e)]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` distinct events were indexed; ``False`` on timeout."""
        with self.lock:
            return self.lock.wait_for(
                lambda: len({_event_id(e) for e in self.events}) >= count, timeout=timeout
            )

    # -- answers -----------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        if request.path in HEALTH_PATHS:
            return self._health(request)
        if request.method != "POST":
            return Answer(405, {"text": "Method not allowed"})
        if request.path in EVENT_PATHS:
            return self._authorized(request, self._events)
        if request.path == ACK_PATH:
            return self._authorized(request, self._acks)
        return Answer(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def _health(self, request: Request) -> Answer:
        header = request.headers.get("authorization")
        if header is not None:
            token = self.tokens.get(header.removeprefix("Splunk ").strip())
            if token is None:
                return hec(21, "Invalid token", 400)
            if token.disabled:
                return hec(22, "Token disabled", 400)
        if not self.healthy:
            return hec(18, "HEC is unhealthy, queues are full", 503)
        return hec(17, "HEC is healthy", 200)

    def _authorized(self, request: Request, then: Any) -> Answer:
        if "token" in request.query:
            return hec(16, "Query string authorization is not enabled", 400)
        header = request.headers.get("authorization")
        if header is None:
            return hec(2, "Token is required", 401)
        if not header.startswith("Splunk "):
            return hec(3, "Invalid authorization", 401)
        name = header[len("Splunk ") :].strip()
        token = self.tokens.get(name)
        if token is None:
            return hec(4, "Invalid token", 403)
        if token.disabled:
            return hec(1, "Token disabled", 403)
        answer: Answer = then(request, name, token)
        return answer

    def _channel(self, request: Request, name: str) -> _Channel | Answer:
        value = request.headers.get("x-splunk-request-channel") or next(
            iter(request.query.get("channel", [])), None
        )
        if not value:
            return hec(10, "Data channel is missing", 400)
        try:
            uuid.UUID(value)
        except ValueError:
            return hec(11, "Invalid data channel", 400)
        with self.lock:
            return self._channels.setdefault((name, value.lower()), _Channel())

    def _events(self, request: Request, name: str, token: HecToken) -> Answer:
        body = request.body
        if body is None:
            return hec(6, "Invalid data format", 400, **{"invalid-event-number": 0})
        if len(body) > self.max_content_length:
            return Answer(
                413,
                {
                    "text": f"Content-Length of {len(body)} too large (maximum is "
                    f"{self.max_content_length})"
                },
            )
        channel = self._channel(request, name) if token.ack else None
        if isinstance(channel, Answer):
            return channel
        events, error = _parse(body, token)
        self._index(events, request.wire_bytes, len(body))
        if error is not None:
            return error
        if channel is None:
            return hec(0, "Success", 200)
        with self.lock:
            ack_id = channel.next_id
            channel.next_id += 1
            channel.pending[ack_id] = time.monotonic() + self.ack_delay_s
        return hec(0, "Success", 200, ackId=ack_id)

    def _index(self, events: list[dict[str, Any]], wire: int, body: int) -> None:
        with self.lock:
            self.received += len(events)
            if self.keep:
                self.events.extend(events)
                if events:
                    ids = tuple(_event_id(e) for e in events if not _is_check(e))
                    self.deliveries.append(ids)
            self.wire_bytes += wire
            self.body_bytes += body
            self.lock.notify_all()

    def _acks(self, request: Request, name: str, token: HecToken) -> Answer:
        if not token.ack:
            return hec(14, "ACK is disabled", 400)
        channel = self._channel(request, name)
        if isinstance(channel, Answer):
            return channel
        try:
            asked = json.loads(request.body or b"")["acks"]
            ids = [int(i) for i in asked]
        except (ValueError, KeyError, TypeError):
            return hec(6, "Invalid data format", 400)
        now = time.monotonic()
        out: dict[str, bool] = {}
        with self.lock:
            for ack_id in ids:
                ready = channel.pending.get(ack_id)
                done = ready is not None and ready <= now and not self.lose_acks
                if done:
                    del channel.pending[ack_id]
                out[str(ack_id)] = done
        return Answer(200, {"acks": out})


def _parse(body: bytes, token: HecToken) -> tuple[list[dict[str, Any]], Answer | None]:
    """The event objects of a body up to the first bad one, and HEC's answer for that one."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    events: list[dict[str, Any]] = []
    position = 0
    for number in itertools.count():
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        try:
            item, position = decoder.raw_decode(text, position)
        except ValueError:
            return events, hec(6, "Invalid data format", 400, **{"invalid-event-number": number})
        problem = _problem(item, token, number)
        if problem is not None:
            return events, problem
        events.append(item)
    if not events:
        return events, hec(5, "No data", 400)
    return events, None


def _problem(item: Any, token: HecToken, number: int) -> Answer | None:
    where = {"invalid-event-number": number}
    if not isinstance(item, dict):
        return hec(6, "Invalid data format", 400, **where)
    if "event" not in item:
        return hec(12, "Event field is required", 400, **where)
    if item["event"] in (None, ""):
        return hec(13, "Event field cannot be blank", 400, **where)
    if item.get("index", token.indexes[0]) not in token.indexes:
        return hec(7, "Incorrect index", 400, **where)
    return None


def _event_id(item: dict[str, Any]) -> str:
    event = item.get("event")
    return str(event.get("event_id", "")) if isinstance(event, dict) else ""


def _is_check(item: dict[str, Any]) -> bool:
    event = item.get("event")
    return isinstance(event, dict) and event.get(CHECK_FIELD) is True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.splunk_hec_receiver",
        description="Serve a Splunk HTTP Event Collector emulator on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--token", required=True, help="a HEC token it accepts")
    parser.add_argument("--ack-token", help="a HEC token with indexer acknowledgement")
    parser.add_argument("--index", action="append", help="an index the tokens may write")
    parser.add_argument(
        "--count-only", action="store_true", help="count events instead of keeping them"
    )
    args = parser.parse_args(argv)
    indexes = tuple(args.index or ["main"])
    receiver = SplunkHecReceiver(args.token, indexes=indexes, port=args.port)
    if args.ack_token:
        receiver.add_token(args.ack_token, indexes=indexes, ack=True)
    receiver.keep = not args.count_only
    return serve_until_signal(receiver)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["HecToken", "SplunkHecReceiver"]
