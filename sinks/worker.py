"""The sink worker: destination topics → batches → destinations, offsets committed after.

Per destination-topic partition, records are gathered into a batch until a count, byte or age
limit; the batch is written through ``sinks.retry.call`` and only then is its offset committed.
Writes of one partition are sequential, so after a crash only the last batch can be replayed,
and it rewrites the same object key (or resends the same ``Idempotency-Key``).

When a batch's retries run out, only its partition is paused and rewound to the batch's first
offset; it is retried later with growing delay while every other destination keeps flowing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auditstream.config.destinations import Destination
from auditstream.config.errors import ConfigError
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord, Record, TopicPartition
from auditstream.pipeline.settings_view import SettingsView
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.schemas import codec
from auditstream.schemas.errors import CodecError
from auditstream.sinks import metrics, retry
from auditstream.sinks.base import NOTHING_WRITTEN, Sink
from auditstream.sinks.batch import Batch
from auditstream.sinks.errors import DeliveryError, TransientError
from auditstream.sinks.factory import build_sink
from auditstream.sinks.health import DestinationHealth, State, pause_seconds
from auditstream.sinks.redaction import redact
from auditstream.sinks.status import StatusPublisher, decode_status

log = logging.getLogger(__name__)

SinkFactory = Callable[[Destination], Sink]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    poll_records: int = 2000
    poll_timeout: float = 0.2
    # Counts encoded record bytes; a decoded event held in a batch costs about 8 times its
    # encoded size in memory (bench/README.md), so 64 MiB keeps a worker near 0.5 GiB.
    max_buffered_bytes: int = 64 * 1024 * 1024
    retry_policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    pause_base: float = 1.0
    pause_cap: float = 300.0
    # Fault injection for crash tests (see config.runtime): exit after the N-th write.
    exit_after_writes: int | None = None


class SinkWorker:
    """Consumes every destination topic (regex subscription) in the group ``auditstream-sinks``.

    Run more workers to scale out on Kafka: partitions are balanced between them.
    """

    def __init__(
        self,
        log_backend: Log,
        *,
        options: WorkerOptions | None = None,
        sink_factory: SinkFactory | None = None,
        local_root: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        box: SecretBox | None = None,
    ) -> None:
        self.options = options or WorkerOptions()
        self._log = log_backend
        ensure_core_topics(log_backend)
        self.settings = SettingsView(log_backend, box=box)
        self.settings.catch_up()
        self._consumer = log_backend.consumer(topics.SINK_GROUP, topics.DESTINATION_PATTERN)
        self._consumer.on_revoke(self._revoked)
        self._dlq = log_backend.producer()
        self._dlq_errors: list[Exception] = []
        self._factory: SinkFactory = sink_factory or (
            lambda d: build_sink(d, local_root=local_root)
        )
        self._clock = clock
        self._batches: dict[TopicPartition, Batch] = {}
        self._sinks: dict[str, tuple[Destination, Sink]] = {}
        self._paused: dict[TopicPartition, tuple[float, int]] = {}  # tp -> (resume at, offset)
        self.health: dict[str, DestinationHealth] = {}
        self._buffered = 0
        self._writes = 0
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self._status = StatusPublisher(log_backend, self.worker_id)
        self._restore_replays()

    # consuming ------------------------------------------------------------------------------

    def step(self) -> int:
        """Poll once, add records to batches, write batches that are due. Returns records read."""
        self.settings.poll()
        self._resume_due()
        records = self._consumer.poll(self.options.poll_records, self.options.poll_timeout)
        for record in records:
            self._add(record)
        self._flush_due()
        return len(records)

    def _add(self, record: Record) -> None:
        tp = record.tp
        if tp in self._paused:
            return  # fetched before the pause; it will be read again after the rewind
        dest_id = topics.destination_of(record.topic) or ""
        found = self.settings.destination(dest_id)
        held = self._held_state(found[1] if found else None)
        if held is not None or found is None:
            # Unknown (settings not seen yet), disabled or paused: events wait in the topic.
            self.health.setdefault(dest_id, DestinationHealth()).state = held or State.WAITING
            self._pause(tp, record.offset, delay=self.options.pause_base * 2)
            return
        account_id, destination = found
        if destination.replay is not None and self._replay(tp, dest_id, destination):
            return
        batch = self._batches.get(tp)
        if batch is None:
            batch = Batch(dest_id, account_id, record.topic, record.partition)
            batch.opened_at = self._clock()
            self._batches[tp] = batch
        try:
            event = codec.decode(record.value)
        except CodecError as exc:
            self._dead_letter(record, exc.reason, str(exc))
        else:
            account = self.settings.account(account_id)
            if account is not None and account.redact:
                redact(event, account.redact)
            batch.events.append(event)
        batch.records.append(record)
        batch.size_bytes += len(record.value)
        self._buffered += len(record.value)
        limits = destination.batch
        if len(batch.records) >= limits.max_events or batch.size_bytes >= limits.max_bytes:
            self._flush(tp)

    def _restore_replays(self) -> None:
        """Learn which replay requests were applied before (from the status topic), so a
        restarted worker does not replay them again."""
        ends = self._log.end_offsets(topics.STATUS)
        reader = self._log.reader(topics.STATUS)
        positions = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + 30
        while any(positions[tp] < end for tp, end in ends.items()):
            records = reader.poll(1000, 0.5)
            if not records and time.monotonic() > deadline:
                break
            for r in records:
                positions[r.tp] = r.offset + 1
                if r.key and r.value:
                    applied = decode_status(r.value).get("applied_replay_id")
                    if applied:
                        dest = r.key.decode()
                        self.health.setdefault(
                            dest, DestinationHealth()
                        ).applied_replay_id = applied
        reader.close()

    @staticmethod
    def _held_state(destination: Destination | None) -> State | None:
        if destination is None:
            return State.WAITING
        if not destination.enabled:
            return State.DISABLED
        if destination.paused:
            return State.PAUSED
        return None

    def _replay(self, tp: TopicPartition, dest_id: str, destination: Destination) -> bool:
        """Apply a new replay request: rewind ``tp`` to the first offset recorded at or after
        ``from_time``. Returns True if it rewound (the current record is dropped)."""
        replay = destination.replay
        health = self.health.setdefault(dest_id, DestinationHealth())
        if replay is None or health.applied_replay_id == replay.id:
            return False
        health.applied_replay_id = replay.id
        offset = self._log.offset_for_time(tp, int(replay.from_time.timestamp() * 1000))
        log.info("destination %s: replay %s from offset %d", dest_id, replay.id, offset)
        open_batch = self._batches.pop(tp, None)
        if open_batch is not None:
            self._buffered -= open_batch.size_bytes
        self._consumer.commit({tp: offset})
        self._consumer.seek(tp, offset)
        self._status.maybe_publish(dest_id, health)
        self._status.flush()
        return True

    def _dead_letter(self, record: Record, reason: str, detail: str) -> None:
        metrics.EVENTS_DEAD_LETTERED.labels(reason=reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, detail
        )

        def delivered(err: Exception | None, _r: OutgoingRecord) -> None:
            if err is not None:
                self._dlq_errors.append(err)

        self._dlq.produce(
            dead_letter(record, stage="sink", reason=reason, detail=detail), delivered
        )

    def _flush_due(self) -> None:
        now = self._clock()
        for tp, batch in list(self._batches.items()):
            found = self.settings.destination(batch.destination_id)
            max_age = found[1].batch.max_age_s if found else 0.0
            if now - batch.opened_at >= max_age:
                self._flush(tp)
        while self._buffered > self.options.max_buffered_bytes and self._batches:
            largest = max(self._batches, key=lambda t: self._batches[t].size_bytes)
            self._flush(largest)

    # writing --------------------------------------------------------------------------------

    def _sink_for(self, dest_id: str) -> tuple[Destination, Sink] | None:
        found = self.settings.destination(dest_id)
        if found is None:
            return None
        destination = found[1]
        cached = self._sinks.get(dest_id)
        if cached is not None and cached[0] == destination:
            return cached
        if cached is not None:
            cached[1].close()  # settings changed: rebuild the sink
        entry = (destination, self._factory(destination))
        self._sinks[dest_id] = entry
        return entry

    def _flush(self, tp: TopicPartition) -> None:
        batch = self._batches.pop(tp)
        self._buffered -= batch.size_bytes
        health = self.health.setdefault(batch.destination_id, DestinationHealth())
        try:
            entry = self._sink_for(batch.destination_id)
        except (ConfigError, ValueError) as exc:
            # A setting no sink can work with: the destination is in error until it is fixed;
            # its events wait in its topic and every other destination keeps flowing.
            health.failed(permanent=True, message=str(exc), cause="invalid_config")
            log.error("destination %s has invalid settings: %s", batch.destination_id, exc)
            self._pause(tp, batch.first_offset, delay=self.options.pause_cap / 10)
            return
        if entry is None:
            health.state = State.WAITING
            self._pause(tp, batch.first_offset, delay=self.options.pause_base * 5)
            return
        _destination, sink = entry
        started = time.perf_counter()
        written = NOTHING_WRITTEN
        if batch.events:
            try:
                written = retry.call(
                    lambda: sink.write(batch),
                    policy=self.options.retry_policy,
                    retryable=sink.is_retryable,
                    on_retry=lambda exc, _s: metrics.RETRIES.labels(
                        sink_type=sink.type, cause=getattr(exc, "cause", "internal")
                    ).inc(),
                )
            except DeliveryError as exc:
                self._failed(tp, batch, sink, exc)
                return
            except Exception as exc:  # a bug or an unmapped vendor error: never lose the batch
                log.exception("unexpected error writing %s", batch.destination_id)
                self._failed(tp, batch, sink, TransientError(repr(exc), cause="internal"))
                return
        self._writes += 1
        if self.options.exit_after_writes and self._writes >= self.options.exit_after_writes:
            log.warning("fault injection: exiting after write %d, before commit", self._writes)
            os._exit(86)
        if not self._dead_letters_stored():
            self._failed(
                tp, batch, sink, TransientError("dead-letter topic write failed", cause="dlq")
            )
            return
        try:
            self._consumer.commit({tp: batch.last_offset + 1})
        except LogError as exc:
            # Written but not committed: the replay rewrites the same key (idempotent).
            log.warning("commit after write failed for %s: %s", batch.destination_id, exc)
            self._pause(tp, batch.first_offset, delay=self.options.pause_base)
            return
        elapsed = time.perf_counter() - started
        metrics.BATCH_WRITE_SECONDS.labels(sink_type=sink.type).observe(elapsed)
        metrics.BATCHES.labels(sink_type=sink.type, outcome="written").inc()
        metrics.EVENTS_DELIVERED.labels(sink_type=sink.type).inc(len(batch.events))
        metrics.BYTES_WRITTEN.labels(sink_type=sink.type).inc(written.bytes_written)
        health.succeeded(time.time(), len(batch.events))

    def _dead_letters_stored(self) -> bool:
        remaining = self._dlq.flush(30.0)
        failed = bool(self._dlq_errors) or remaining > 0
        self._dlq_errors.clear()
        return not failed

    def _failed(self, tp: TopicPartition, batch: Batch, sink: Sink, exc: DeliveryError) -> None:
        health = self.health.setdefault(batch.destination_id, DestinationHealth())
        permanent = not sink.is_retryable(exc)
        health.failed(permanent=permanent, message=str(exc), cause=exc.cause)
        metrics.BATCHES.labels(sink_type=sink.type, outcome="failed").inc()
        delay = pause_seconds(
            health.consecutive_failures, base=self.options.pause_base, cap=self.options.pause_cap
        )
        if permanent:
            delay = max(delay, min(self.options.pause_cap, self.options.pause_base * 10))
        log.error(
            "destination %s %s (%s); paused %.1fs: %s",
            batch.destination_id,
            health.state.value,
            exc.cause,
            delay,
            exc,
        )
        self._pause(tp, batch.first_offset, delay=delay)

    def _pause(self, tp: TopicPartition, offset: int, *, delay: float) -> None:
        open_batch = self._batches.pop(tp, None)
        if open_batch is not None:
            self._buffered -= open_batch.size_bytes
            offset = min(offset, open_batch.first_offset)
        self._consumer.pause([tp])
        self._consumer.seek(tp, offset)
        self._paused[tp] = (self._clock() + delay, offset)

    def _resume_due(self) -> None:
        now = self._clock()
        due = [tp for tp, (at, _off) in self._paused.items() if at <= now]
        for tp in due:
            _at, offset = self._paused.pop(tp)
            self._consumer.seek(tp, offset)
            self._consumer.resume([tp])
        metrics.BUFFERED_BYTES.set(self._buffered)
        counts = {s: 0 for s in State}
        for dest_id, h in self.health.items():
            counts[h.state] += 1
            self._status.maybe_publish(dest_id, h)
        for state, n in counts.items():
            metrics.DESTINATIONS.labels(state=state.value).set(n)

    def _revoked(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            batch = self._batches.pop(tp, None)
            if batch is not None:
                self._buffered -= batch.size_bytes
            self._paused.pop(tp, None)

    # lifecycle ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Write every open batch now, whatever its age."""
        for tp in list(self._batches):
            self._flush(tp)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()
        self.drain()

    def close(self) -> None:
        for _d, sink in self._sinks.values():
            sink.close()
        self._dlq.close()
        for dest_id, h in self.health.items():
            self._status.maybe_publish(dest_id, h)
        self._status.close()
        self._consumer.close()
        self.settings.close()
