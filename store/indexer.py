"""The indexer: reads the activity topic into the audit store (a consumer group of its own).

Each batch is stored (all or none, duplicates skipped), its dead letters are stored, and only
then are its offsets committed: a crash anywhere before the commit reads the batch again and
the store keeps each event once. A failure of the store or the log rewinds the batch and tries
again after a pause that doubles up to 30 s; nothing is skipped. A new group starts at the
earliest retained record, so a first start fills the store from what the log still holds.
Several indexers share the partitions between them (scale-out by partitions); every account is
in one partition, so its events reach the store in the order of that partition.

Retention runs in the same loop every ``retention_interval_s`` (in bounded batches).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditstream.pipeline import dead_letters, topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord, Producer, Record, TopicPartition
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.store import indexer_metrics as metrics
from auditstream.store.base import AppendResult, AuditStore
from auditstream.store.errors import InvalidEvent, StoreError
from auditstream.store.index_records import STAGE, sort_records

INDEXER_GROUP = "auditstream-indexer"
_MAX_PAUSE_S = 30.0
_DLQ_FLUSH_S = 10.0

log = logging.getLogger("auditstream.indexer")


@dataclass(frozen=True, slots=True)
class IndexerOptions:
    batch_size: int = 1000
    poll_timeout_s: float = 0.5
    retention_interval_s: float = 3600.0
    """Seconds between retention runs; 0 turns retention off in this process."""
    retention_batch: int = 10_000
    retry_pause_s: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.retention_batch < 1:
            raise ValueError("batch sizes must be at least 1")
        if self.retention_interval_s < 0 or self.retry_pause_s <= 0:
            raise ValueError("the retention interval and the retry pause cannot be negative")


class Indexer:
    """Stores the activity topic's events in ``store``; ``run`` until a stop is asked."""

    def __init__(
        self,
        log_backend: Log,
        store: AuditStore,
        options: IndexerOptions | None = None,
        *,
        activity_partitions: int = 1,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log_backend
        self._store = store
        self._options = options or IndexerOptions()
        self._now = now
        self._clock = clock
        ensure_core_topics(log_backend, activity_partitions)
        self._consumer = log_backend.consumer(INDEXER_GROUP, [topics.ACTIVITY])
        self._producer: Producer | None = None
        self._next_retention = clock()

    def step(self) -> int:
        """Read one batch and store it; returns the records it took (0: none waiting).
        Raises ``StoreError`` or ``LogError`` having rewound the batch (nothing committed)."""
        records = self._consumer.poll(self._options.batch_size, self._options.poll_timeout_s)
        if not records:
            return 0
        try:
            self._take(records)
        except (StoreError, LogError):
            metrics.STORE_FAILURES.inc()
            self._rewind(records)
            raise
        return len(records)

    def _take(self, records: list[Record]) -> None:
        found = sort_records(records)
        result = self._append(found.events, found.dead_letters)
        self._send_dead_letters(found.dead_letters)
        ends: dict[TopicPartition, int] = {}
        for record in records:
            ends[record.tp] = max(ends.get(record.tp, 0), record.offset + 1)
        self._consumer.commit(ends)
        metrics.EVENTS_INDEXED.inc(result.inserted)
        metrics.EVENTS_DUPLICATE.inc(result.duplicates)
        if result.conflicts:
            metrics.EVENTS_CONFLICTING.inc(result.conflicts)
            log.warning(
                "%d events of %s carry the id of a stored event of their account but other "
                "content: the stored events are kept and these are not stored; look for a "
                "producer that reuses event ids",
                result.conflicts,
                _places(records),
            )
        for reason in found.left_to_router:
            metrics.EVENTS_LEFT_TO_ROUTER.labels(reason=reason).inc()

    def _append(
        self,
        events: list[tuple[Record, dict[str, Any]]],
        letters: list[tuple[OutgoingRecord, str]],
    ) -> AppendResult:
        try:
            return self._store.append([event for _, event in events])
        except InvalidEvent:
            pass
        # An event the store refuses is dead-lettered; the others are stored one by one.
        inserted = duplicates = conflicts = 0
        for record, event in events:
            try:
                result = self._store.append([event])
            except InvalidEvent as exc:
                letter = dead_letters.dead_letter(
                    record, stage=STAGE, reason="invalid_event", detail=str(exc)
                )
                letters.append((letter, "invalid_event"))
                continue
            inserted, duplicates = inserted + result.inserted, duplicates + result.duplicates
            conflicts += result.conflicts
        return AppendResult(inserted, duplicates, conflicts)

    def _send_dead_letters(self, letters: Sequence[tuple[OutgoingRecord, str]]) -> None:
        if not letters:
            return
        if self._producer is None:
            self._producer = self._log.producer()
        failures: list[Exception] = []

        def delivered(err: Exception | None, _record: OutgoingRecord) -> None:
            if err is not None:
                failures.append(err)

        for letter, reason in letters:
            headers = dict(letter.headers)
            log.warning(
                "dead-lettered %s[%s]@%s: %s (%s)",
                topics.ACTIVITY,
                headers.get(dead_letters.SOURCE_PARTITION, b"?").decode(),
                headers.get(dead_letters.SOURCE_OFFSET, b"?").decode(),
                reason,
                headers.get(dead_letters.DETAIL, b"").decode(errors="replace"),
            )
            self._producer.produce(letter, delivered)
        remaining = self._producer.flush(_DLQ_FLUSH_S)
        if failures or remaining:
            cause = failures[0] if failures else f"{remaining} still unsent"
            raise LogError(f"the dead-letter topic did not take the indexer's records ({cause})")
        for _letter, reason in letters:
            metrics.EVENTS_DEAD_LETTERED.labels(reason=reason).inc()

    def _rewind(self, records: list[Record]) -> None:
        firsts: dict[TopicPartition, int] = {}
        for record in records:
            firsts.setdefault(record.tp, record.offset)
        for tp, offset in firsts.items():
            try:
                self._consumer.seek(tp, offset)
            except LogError as exc:  # taken away meanwhile: its new owner reads it
                log.warning("indexer: cannot rewind %s[%d]: %s", tp.topic, tp.partition, exc)

    def retention_due(self) -> bool:
        interval = self._options.retention_interval_s
        return interval > 0 and self._clock() >= self._next_retention

    def run_retention(self, stop: threading.Event | None = None) -> int:
        """Delete every expired event (in batches); returns how many. Raises ``StoreError``
        (counted as a failed run; the next run is one interval later)."""
        self._next_retention = self._clock() + self._options.retention_interval_s
        deleted = 0
        try:
            while stop is None or not stop.is_set():
                result = self._store.apply_retention(self._now(), self._options.retention_batch)
                deleted += result.deleted
                metrics.RETENTION_DELETED.inc(result.deleted)
                if result.complete:
                    metrics.RETENTION_RUNS.labels(outcome="complete").inc()
                    metrics.RETENTION_LAST_COMPLETE.set(self._now().timestamp())
                    break
            else:
                metrics.RETENTION_RUNS.labels(outcome="stopped").inc()
        except StoreError:
            metrics.RETENTION_RUNS.labels(outcome="failed").inc()
            raise
        if deleted:
            log.info("retention deleted %d expired events", deleted)
        return deleted

    def run(self, stop: threading.Event) -> None:
        pause = self._options.retry_pause_s
        while not stop.is_set():
            try:
                if self.retention_due():
                    self.run_retention(stop)
                self.step()
            except (StoreError, LogError) as exc:
                log.error("indexer: %s; trying again in %g s", exc, pause)
                stop.wait(pause)
                pause = min(pause * 2, _MAX_PAUSE_S)
                continue
            pause = self._options.retry_pause_s

    def close(self) -> None:
        try:
            if self._producer is not None:
                self._producer.close()
        finally:
            self._consumer.close()


def _places(records: Sequence[Record]) -> str:
    """``topic[partition]@first..last`` of each partition of ``records``."""
    spans: dict[TopicPartition, tuple[int, int]] = {}
    for record in records:
        low, high = spans.get(record.tp, (record.offset, record.offset))
        spans[record.tp] = (min(low, record.offset), max(high, record.offset))
    return ", ".join(f"{tp.topic}[{tp.partition}]@{a}..{b}" for tp, (a, b) in spans.items())
