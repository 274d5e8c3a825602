"""Destination status records: what each worker knows of its destinations' health, published
to the compacted ``auditstream.status`` topic (key = destination id) so the settings API can
answer "how is my destination doing" across processes.

A record names the account it belongs to (``account_id``): a destination id that is deleted and
created again in another account starts with a clean record, and a reader ignores records of
another account than the destination's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    """Raises ``ValueError`` (``orjson.JSONDecodeError``) if ``value`` is not JSON."""
    data: dict[str, Any] = orjson.loads(value)
    return data


class StatusPublisher:
    """Publishes a destination's health when it changes, and at most every ``interval``
    seconds otherwise. Records are queued by :meth:`maybe_publish` and written by
    :meth:`flush`. Best effort: a failed publish is retried next time."""

    def __init__(
        self,
        log_backend: Log,
        worker_id: str,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = log_backend.producer()
        self._worker_id = worker_id
        self._interval = interval
        self._clock = clock
        self._last: dict[str, tuple[tuple[object, ...], float]] = {}

    def maybe_publish(self, destination_id: str, health: DestinationHealth) -> bool:
        """Queue ``health`` if it changed since the last record or that is ``interval`` old.
        True if a record was queued."""
        now = self._clock()
        fingerprint = (
            health.account_id,
            health.state.value,
            health.consecutive_failures,
            health.expired_events,
            health.applied_replay_id,
            health.last_success_at is None,
        )
        last = self._last.get(destination_id)
        if last is not None and last[0] == fingerprint and now - last[1] < self._interval:
            return False
        self._last[destination_id] = (fingerprint, now)
        self._producer.produce(
            OutgoingRecord(
                topics.STATUS,
                encode_status(destination_id, health, self._worker_id),
                key=destination_id.encode(),
            )
        )
        return True

    def forget(self, destination_id: str) -> None:
        """Stop tracking ``destination_id`` (deleted): its next record, if any, is published
        at once."""
        self._last.pop(destination_id, None)

    def flush(self, timeout: float = 5.0) -> None:
        """Write the queued records (the embedded producer writes only on flush)."""
        self._producer.flush(timeout)

    def close(self) -> None:
        self._producer.close()
