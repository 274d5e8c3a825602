"""Destination status records: what each worker knows of its destinations' health, published
to the compacted ``auditstream.status`` topic (key = destination id) so the settings API can
answer "how is my destination doing" across processes."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import orjson

from auditstream.pipeline import topics
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.sinks.health import DestinationHealth


def encode_status(destination_id: str, health: DestinationHealth, worker_id: str) -> bytes:
    data: dict[str, Any] = asdict(health)
    data["state"] = health.state.value
    data["destination_id"] = destination_id
    data["worker_id"] = worker_id
    data["reported_at"] = time.time()
    return orjson.dumps(data)


def decode_status(value: bytes) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(value)
    return data


class StatusPublisher:
    """Publishes a destination's health when its state changes, and at most every
    ``interval`` seconds otherwise. Best effort: a failed publish is retried next time."""

    def __init__(self, log_backend: Log, worker_id: str, interval: float = 10.0) -> None:
        self._producer = log_backend.producer()
        self._worker_id = worker_id
        self._interval = interval
        self._last: dict[str, tuple[str, int, float]] = {}

    def maybe_publish(self, destination_id: str, health: DestinationHealth) -> None:
        now = time.monotonic()
        fingerprint = (health.state.value, health.consecutive_failures)
        last = self._last.get(destination_id)
        if last is not None and last[:2] == fingerprint and now - last[2] < self._interval:
            return
        self._last[destination_id] = (*fingerprint, now)
        self._producer.produce(
            OutgoingRecord(
                topics.STATUS,
                encode_status(destination_id, health, self._worker_id),
                key=destination_id.encode(),
            )
        )
        # The embedded producer writes only on flush: without it no report would be seen.
        self._producer.flush(5.0)

    def flush(self) -> None:
        self._producer.flush(5.0)

    def close(self) -> None:
        self._producer.close()
