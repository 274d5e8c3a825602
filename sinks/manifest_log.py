"""Sent batch boundaries kept durably, so a worker that takes a partition over cuts records
another worker sent, and did not commit, as they were sent (ADR 018).

Before the first attempt at a batch, the worker writes its partition's sent, uncommitted
boundaries to a compacted topic keyed ``<destination>:<partition>`` and waits until the log
has stored them (the producer's acks=all). A worker reads the topic when it starts and catches
up with it before it forms the first batch of a partition assigned to it.
"""

from __future__ import annotations

import logging
import time

import orjson

from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord, Record, TopicPartition
from auditstream.sinks.batch_manifests import Span

log = logging.getLogger(__name__)

TOPIC = topics.SINK_BATCHES
"""The compacted topic of sent batch boundaries (not a destination topic: the workers'
subscription does not match it)."""
WRITE_WAIT_S = 10.0
SKIP_AFTER_FAILURE_S = 30.0
"""After a write that failed, writes are skipped this long: the poll loop must not wait
``WRITE_WAIT_S`` for every round of batches while the brokers are away."""
CATCH_UP_S = 5.0


def _key(tp: TopicPartition) -> str:
    return f"{topics.destination_of(tp.topic) or tp.topic}:{tp.partition}"


class ManifestLog:
    """Writes and reads sent batch boundaries. Not thread-safe (the poll loop's)."""

    def __init__(self, log_backend: Log, *, catch_up: bool = True) -> None:
        """Open the topic's view and a producer, and read the view to its end unless
        ``catch_up`` is False (then :meth:`catch_up` reads it). Raises :class:`LogError`."""
        self._known: dict[str, list[Span]] = {}
        self._view = CompactedTopicView(log_backend, TOPIC, self._apply)
        try:
            self._producer = log_backend.producer()
        except BaseException:
            self._view.close()
            raise
        self._skip_until = -1.0
        self.write_seconds = 0.0
        self.writes = 0
        """Waits for the log (one per dispatch round that starts batches)."""
        if catch_up:
            self.catch_up()

    def catch_up(self) -> None:
        """Read every stored boundary (a failure is logged: a partition taken over may then
        be cut otherwise)."""
        try:
            self._view.catch_up(30.0)
        except (TimeoutError, LogError) as exc:
            log.warning("sent batch boundaries not read to the end (%s)", exc)

    def _apply(self, record: Record) -> None:
        if record.key is None:
            return
        key = record.key.decode(errors="replace")
        if not record.value:
            self._known.pop(key, None)
            return
        try:
            spans = orjson.loads(record.value)
            self._known[key] = [(int(first), int(last)) for first, last in spans]
        except (ValueError, TypeError):
            log.warning("sent batch boundaries of %s unreadable; ignored", key)

    def write(self, spans_of: dict[TopicPartition, list[Span]]) -> bool:
        """Store the sent boundaries of each partition and wait (once) until the log has
        them. False (logged) if it did not: the batches are sent anyway, and only this process
        knows their boundaries."""
        errors: list[Exception] = []

        def delivered(err: Exception | None, _r: OutgoingRecord) -> None:
            if err is not None:
                errors.append(err)

        started = time.monotonic()
        if started < self._skip_until:
            return False
        try:
            for tp, spans in spans_of.items():
                value = orjson.dumps(spans) if spans else b""
                self._producer.produce(OutgoingRecord(TOPIC, value, _key(tp).encode()), delivered)
            remaining = self._producer.flush(WRITE_WAIT_S)
        except LogError as exc:
            errors.append(exc)
            remaining = 0
        self.write_seconds += time.monotonic() - started
        self.writes += 1
        if errors or remaining:
            self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_S
            log.warning(
                "sent batch boundaries of %s not stored (%s): a worker taking these "
                "partitions over may cut their records otherwise; not stored for %.0f s",
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in spans_of),
                errors[0] if errors else "timed out",
                SKIP_AFTER_FAILURE_S,
            )
            return False
        for tp, spans in spans_of.items():
            self._known[_key(tp)] = list(spans)
        return True

    def read(self, tps: set[TopicPartition]) -> dict[TopicPartition, list[Span]]:
        """The sent boundaries of ``tps`` as the log has them now (caught up first)."""
        try:
            self._view.catch_up(CATCH_UP_S)
        except (TimeoutError, LogError) as exc:
            log.warning("sent batch boundaries not read to the end (%s)", exc)
        return {tp: list(self._known[_key(tp)]) for tp in tps if self._known.get(_key(tp))}

    def close(self) -> None:
        try:
            self._producer.close()
        finally:
            self._view.close()
