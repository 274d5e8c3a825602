"""The producer SDK: validate, encode, and produce one activity event per call.

Events are keyed by account id (so one account's events stay in order) and carry the headers
``category`` and ``activity`` the router filters on without decoding. On Kafka the producer is
idempotent with ``acks=all``; delivery failures are counted and raised by :meth:`flush`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from auditstream.pipeline import topics
from auditstream.pipeline.log import Log, OutgoingRecord
from auditstream.producers.errors import DeliveryFailed, ValidationError
from auditstream.producers.metrics import EVENTS_PRODUCED
from auditstream.producers.validation import check_fields, schema_problem
from auditstream.schemas import codec
from auditstream.schemas.event import ActivityEvent

EventInput = ActivityEvent | Mapping[str, Any]
"""What the SDK sends: an ``ActivityEvent`` (mypy checks it where it is built) or any other
mapping (from untyped code, parsed JSON, ...), which only the run-time validation checks."""

_DELIVERED = EVENTS_PRODUCED.labels(outcome="delivered")
_FAILED = EVENTS_PRODUCED.labels(outcome="failed")


_ENCODER_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)
"""What fastavro's writer raises for a value its schema does not take."""


def to_record(event: EventInput, topic: str = topics.ACTIVITY) -> OutgoingRecord:
    """Validate and encode ``event``. Raises :class:`producers.errors.ValidationError`.

    The schema is checked by encoding: the encoder refuses what the schema check refuses, so
    the event is walked once, not twice; only an event the encoder refuses is walked again, by
    the schema check, for an error that names the field."""
    check_fields(event)
    try:
        value = codec.encode(event)
    except _ENCODER_ERRORS as exc:
        raise (schema_problem(event, exc) or ValidationError("event", str(exc))) from exc
    return OutgoingRecord(
        topic=topic,
        value=value,
        key=event["account_id"].encode(),
        headers=(
            ("category", event["category"].encode()),
            ("activity", event["activity"].encode()),
        ),
    )


class ActivityProducer:
    """Produces activity events to the activity topic of ``log``.

    ``send`` raises :class:`ValidationError` (nothing sent) for an invalid event; ``flush`` and
    ``close`` raise :class:`DeliveryFailed` if the log did not store some events, with the
    first reason as its message and ``__cause__`` (:class:`pipeline.errors.LogFull` when the
    embedded log's storage is full: the events not stored may be sent again).
    """

    def __init__(self, log: Log, topic: str = topics.ACTIVITY) -> None:
        self._producer = log.producer()
        self._topic = topic
        self._lock = threading.Lock()
        self._failed = 0
        self._first_error: Exception | None = None
        self.delivered = 0

    def _on_delivery(self, err: Exception | None, _record: OutgoingRecord) -> None:
        with self._lock:
            if err is None:
                self.delivered += 1
                _DELIVERED.inc()
            else:
                self._failed += 1
                _FAILED.inc()
                if self._first_error is None:
                    self._first_error = err

    def send(self, event: EventInput) -> None:
        """Validate, encode and queue ``event``. Raises :class:`ValidationError` (nothing
        sent) or :class:`pipeline.errors.LogError` if the log cannot queue it."""
        record = to_record(event, self._topic)
        self._producer.produce(record, self._on_delivery)

    def send_many(self, events: Iterable[EventInput]) -> int:
        """Validate and encode every event, then queue them all; returns how many.

        Raises :class:`ValidationError` naming the first invalid event (``events[i].field``)
        before anything is queued, so a batch is sent whole or not at all; a
        :class:`pipeline.errors.LogError` while queueing leaves the earlier events queued
        (their outcome is reported by :meth:`flush`)."""
        records = []
        for i, event in enumerate(events):
            try:
                records.append(to_record(event, self._topic))
            except ValidationError as exc:
                message = str(exc).removeprefix("invalid event: ").split(": ", 1)[-1]
                raise ValidationError(f"events[{i}].{exc.field}", message) from exc
        produce, report = self._producer.produce, self._on_delivery
        for record in records:
            produce(record, report)
        return len(records)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        with self._lock:
            failed, first = self._failed, self._first_error
            self._failed, self._first_error = 0, None
        if remaining:
            raise DeliveryFailed(f"{remaining} events still undelivered after {timeout:.0f}s")
        if failed:
            # Chained, so a caller can tell a full log (pipeline.errors.LogFull: free space,
            # then send the same events again) from other causes.
            raise DeliveryFailed(f"{failed} events were not stored: {first}") from first

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()

    def __enter__(self) -> ActivityProducer:
        return self

    def __exit__(
        self,
        _exc_type: type[BaseException] | None,
        _exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
