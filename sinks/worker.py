"""The sink worker: destination topics → batches → delivery lanes → destinations.

One poll loop owns the consumer, the settings view and every piece of state: it polls, fills
one batch per partition until a count, byte or age limit, seals it and hands it to its
destination's lane (:mod:`sinks.lanes`). Lanes run their attempts on a bounded set of delivery
threads (:mod:`sinks.delivery_threads`); an attempt is one write, and its result comes back
through a queue the poll loop drains. A failed batch stays in its lane and is retried as it is
when its backoff timer is due, so a destination that hangs or fails holds at most its own
attempts, never the loop, the settings, the status reports or another lane.

Guarantees:

- A partition's offset is committed up to the end of the longest run of stored batches from
  its oldest uncommitted one (:mod:`sinks.offsets`); nothing is committed for a batch that is
  not stored, on revocation or when stopping either. While a commit fails, the partition sends
  nothing new (so at most one stored batch is ever uncommitted: a replay after a crash
  rewrites the same object) and the commit is retried.
- Memory is bounded: every record held counts at its decoded size and one cap bounds them all
  (:mod:`sinks.backpressure`); the fullest lanes stop reading first.
- A destination's state (:mod:`sinks.health`) is kept per account and destination, published
  to the status topic and to metrics.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditstream.config.destinations import Destination, Replay
from auditstream.config.secrets import SecretBox
from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, OutgoingRecord, Record, TopicPartition
from auditstream.pipeline.process_reports import ProcessReporter
from auditstream.pipeline.settings_view import SettingsView
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.sinks import backpressure, metrics, retry
from auditstream.sinks.attempts import AttemptResult, Reject, attempt
from auditstream.sinks.batch import DECODED_SIZE_FACTOR, Batch, decoded_size
from auditstream.sinks.delivery_threads import DeliveryThreads
from auditstream.sinks.destination_signals import DestinationSignals, Undelivered
from auditstream.sinks.errors import TransientError
from auditstream.sinks.factory import build_sink
from auditstream.sinks.health import (
    FAILURE_STATES,
    DestinationHealth,
    State,
)
from auditstream.sinks.lanes import Delivery, Lane, LaneKey, SinkFactory
from auditstream.sinks.offsets import OffsetBook
from auditstream.sinks.partitions import (
    BACKOFF,
    DROPPING,
    HELD,
    LANE_FULL,
    MEMORY,
    PAUSE_REASONS,
    SEEK,
    PartitionState,
)
from auditstream.sinks.status import StatusPublisher, decode_status

log = logging.getLogger(__name__)

__all__ = ["SinkFactory", "SinkWorker", "WorkerOptions"]

MiB = 1024 * 1024
_OBJECT_STORE_TYPES = frozenset({"s3", "gcs", "azure_blob", "local"})


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    poll_records: int = 2000
    poll_timeout: float = 0.2
    max_buffered_bytes: int = 128 * MiB
    """The cap on records held (read, not yet stored), counted at their decoded size."""
    retry_policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    """Quick retries of a batch (attempts in all, backoff) before its destination is failing."""
    pause_base: float = 1.0
    pause_cap: float = 300.0
    """The backoff of a failing destination doubles from pause_base up to pause_cap (s)."""
    suspend_after: float = 72 * 3600.0
    """A destination failing (or in error) this long is suspended."""
    suspended_retry: float = 900.0
    """A suspended destination is tried again this often (and at once when its settings
    change)."""
    delivery_threads: int = 32
    lane_in_flight: int = 1
    """Attempts in flight per destination: one keeps every destination's batches in order."""
    object_store_in_flight: int = 1
    """Attempts in flight per object-store destination (keys are deterministic, so order does
    not matter there); more than one lets a crash leave several stored batches uncommitted,
    which the next owner may cut differently: an event could then be stored twice."""
    max_queued_batches: int = 2
    """Sealed batches a lane may hold waiting before its partitions stop reading."""
    drain_timeout: float = 30.0
    """How long stopping waits for attempts in flight (seconds of real time)."""
    status_interval: float = 10.0
    signals_interval: float = 15.0
    destination_metrics: bool = True
    """Export lag and oldest-undelivered age per destination (label ``destination``)."""
    commit_retry_base: float = 0.5
    commit_retry_cap: float = 10.0
    exit_after_writes: int | None = None
    """Fault injection for crash tests (see config.runtime): exit right after the N-th stored
    batch, before its offset is committed. Attempts then run one at a time, so that the N-th
    batch is the last one stored."""


class SinkWorker:
    """Consumes every destination topic (regex subscription) in the group ``auditstream-sinks``.

    Run more workers to scale out on Kafka: partitions are balanced between them. Not
    thread-safe: one thread calls :meth:`step` (or :meth:`run`), :meth:`drain` and
    :meth:`close`. ``clock`` (monotonic) times batches and backoffs; ``wall_clock`` (epoch)
    stamps the reported health.
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
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or WorkerOptions()
        self._log = log_backend
        ensure_core_topics(log_backend)
        self.settings = SettingsView(log_backend, box=box)
        try:
            self.settings.catch_up()
            self.settings.require_keys()
        except BaseException:
            self.settings.close()  # nothing else is open yet
            raise
        self._settings_version = self.settings.version
        self._consumer = log_backend.consumer(topics.SINK_GROUP, topics.DESTINATION_PATTERN)
        self._consumer.on_revoke(self._revoked)
        self._dlq = log_backend.producer()
        self._dlq_errors: list[Exception] = []
        self._factory: SinkFactory = sink_factory or (
            lambda d: build_sink(d, local_root=local_root)
        )
        self._clock = clock
        self._wall = wall_clock
        self._lanes: dict[LaneKey, Lane] = {}
        self._retiring: set[Lane] = set()
        self._partitions: dict[TopicPartition, PartitionState] = {}
        self._health: dict[LaneKey, DestinationHealth] = {}
        self._offsets = OffsetBook()
        self._results: queue.SimpleQueue[AttemptResult] = queue.SimpleQueue()
        exact_crash = self.options.exit_after_writes is not None
        self._threads = DeliveryThreads(1 if exact_crash else self.options.delivery_threads)
        self._busy = 0
        self._writes = 0
        self._generations = itertools.count(1)
        self._memory_paused: set[LaneKey] = set()
        self._held_total = 0
        self._record_estimate = 4096.0
        self._rotation = 0
        self._commit_retry_at: float | None = None
        self._commit_failures = 0
        self._reported_at = -math.inf
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self._reporter = ProcessReporter(log_backend, "sink-worker", self.worker_id)
        self._status = StatusPublisher(
            log_backend, self.worker_id, self.options.status_interval, clock=clock
        )
        self._signals = DestinationSignals(
            log_backend, interval=self.options.signals_interval, wall_clock=wall_clock
        )
        self._restored = self._restore_reports()

    # what the worker knows -------------------------------------------------------------------

    @property
    def health(self) -> dict[str, DestinationHealth]:
        """Health by destination id (each destination as the current account's)."""
        return {key[1]: h for key, h in self._health.items()}

    def health_of(self, account_id: str, destination_id: str) -> DestinationHealth | None:
        return self._health.get((account_id, destination_id))

    @property
    def attempts_in_flight(self) -> int:
        return self._busy

    @property
    def held_bytes(self) -> int:
        """The memory estimate of the records held, as of the last step."""
        return self._held_total

    def paused_partitions(self) -> dict[TopicPartition, set[str]]:
        """Every partition not read now, and why."""
        return {tp: set(ps.pauses) for tp, ps in self._partitions.items() if ps.pauses}

    # the poll loop ---------------------------------------------------------------------------

    def step(self) -> int:
        """Follow the settings, apply finished attempts, commit, start due attempts, poll once
        and batch what was read. Never waits on a destination. Returns records read."""
        self._follow_settings()
        self._collect()
        now = self._clock()
        self._seal_aged(now)
        self._advance_failures()
        self._commit(now)
        self._dispatch(now)
        self._refresh_lane_full()
        self._retry_seeks()
        self._balance_memory()
        records = self._poll()
        self._take(records)
        self._collect()
        now = self._clock()
        self._commit(now)
        self._dispatch(now)
        self._report(now)
        return len(records)

    def _poll(self) -> list[Record]:
        budget = backpressure.poll_budget(
            self._held_total,
            self.options.max_buffered_bytes,
            self._record_estimate,
            self.options.poll_records,
        )
        if not self._busy:
            return self._consumer.poll(budget, self.options.poll_timeout)
        # Attempts are under way: wait for whichever comes first, a result or (at most 50 ms
        # later) new records.
        records = self._consumer.poll(budget, 0.0)
        if not records:
            self._await_result(min(self.options.poll_timeout, 0.05))
        return records

    def _await_result(self, timeout: float) -> None:
        try:
            result = self._results.get(timeout=timeout) if timeout > 0 else None
        except queue.Empty:
            return
        if result is not None:
            self._busy -= 1
            self._apply(result)

    def _collect(self) -> None:
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return
            self._busy -= 1
            self._apply(result)

    # reading records into batches ------------------------------------------------------------

    def _take(self, records: list[Record]) -> None:
        """Add polled records to their partitions' open batches, one run of consecutive
        records of a partition at a time."""
        if not records:
            return
        runs = [
            (TopicPartition(topic, partition), list(run))
            for (topic, partition), run in itertools.groupby(
                records, key=lambda r: (r.topic, r.partition)
            )
        ]
        new = {tp for tp, _run in runs if tp not in self._partitions}
        if new:
            self._open_partitions(new)
        for tp, run in runs:
            self._take_run(self._partitions[tp], run)
        average = DECODED_SIZE_FACTOR * sum(len(r.value) for r in records) / len(records)
        self._record_estimate = 0.8 * self._record_estimate + 0.2 * average

    def _open_partitions(self, new: set[TopicPartition]) -> None:
        try:
            committed = self._consumer.committed(new)
            known = True
        except LogError as exc:
            log.warning("committed offsets unknown (%s): retention losses not checked", exc)
            committed, known = {}, False
        for tp in new:
            self._partitions[tp] = PartitionState(
                tp,
                next_offset=committed.get(tp, 0),
                generation=next(self._generations),
                check_gap=known,
            )

    def _take_run(self, ps: PartitionState, run: list[Record]) -> None:
        """Records a paused partition must not deliver (held, failing) are dropped and read
        again on resume; records that arrive while it is paused only to bound memory (the
        last poll before the pause) are kept."""
        if ps.pauses & DROPPING:
            ps.needs_seek = True
            return
        lane = self._lane_of(ps, run[0].topic)
        if lane is None:
            ps.needs_seek = True  # held: read again when the settings change
            return
        if self._replay_pending(lane, ps):
            return
        for record in run:
            gap = record.offset - ps.next_offset
            if gap < 0:
                continue  # taken already (a seek back reads it again)
            if gap > 0 and (ps.check_gap or gap > 1):
                self._count_expired(lane, ps, record.offset)
            ps.check_gap = False
            self._append(ps, lane, record)

    def _lane_of(self, ps: PartitionState, topic: str) -> Lane | None:
        """The lane of ``ps``'s destination; None (and the partition held) while the
        destination is unknown, paused or disabled."""
        dest_id = topics.destination_of(topic) or ""
        found = self.settings.destination(dest_id)
        if found is None:
            self._health.setdefault(("", dest_id), DestinationHealth()).hold(State.WAITING)
            ps.lane_key = None
            self._pause(ps, HELD)
            return None
        account_id, destination = found
        key = (account_id, dest_id)
        lane = self._lanes.get(key) or self._open_lane(key, destination)
        if ps.lane_key != key:
            self._attach(lane, ps)
        if lane.held:
            self._pause(ps, HELD)
            return None
        return lane

    def _open_lane(self, key: LaneKey, destination: Destination) -> Lane:
        in_flight = (
            self.options.object_store_in_flight
            if destination.type in _OBJECT_STORE_TYPES
            else self.options.lane_in_flight
        )
        lane = Lane(key, destination, in_flight)
        self._lanes[key] = lane
        self._health.pop(("", key[1]), None)
        health = self._health.setdefault(key, DestinationHealth(account_id=key[0]))
        restored = self._restored.pop(key[1], None)
        if restored is not None and restored.get("account_id") in (None, key[0]):
            health.applied_replay_id = restored.get("applied_replay_id")
            health.replay_until = dict(restored.get("replay_until") or {})
            health.expired_events = int(restored.get("expired_events") or 0)
        held = _held_state(destination)
        if held is not None:
            lane.held = True
            health.hold(held)
        return lane

    def _attach(self, lane: Lane, ps: PartitionState) -> None:
        ps.lane_key = lane.key
        lane.partitions.add(ps.tp)
        health = self._health[lane.key]
        replay = lane.destination.replay
        until = health.replay_until.get(str(ps.tp.partition))
        if replay is not None and health.applied_replay_id == replay.id and until is not None:
            ps.replay_id, ps.replay_until = replay.id, until  # a replay under way (restart)

    def _append(self, ps: PartitionState, lane: Lane, record: Record) -> None:
        replay_id = ps.replay_for(record.offset)
        if ps.open is not None and ps.open.replay_id != replay_id:
            self._seal(ps, lane)  # a replay's batches never mix with new ones
        if ps.open is None:
            ps.open = Batch(
                lane.destination_id,
                lane.account_id,
                record.topic,
                record.partition,
                opened_at=self._clock(),
                replay_id=replay_id,
            )
        batch = ps.open
        batch.records.append(record)
        batch.size_bytes += len(record.value)
        ps.open_held += decoded_size(record)
        ps.next_offset = record.offset + 1
        limits = lane.destination.batch
        if len(batch.records) >= limits.max_events or batch.size_bytes >= limits.max_bytes:
            self._seal(ps, lane)

    def _seal(self, ps: PartitionState, lane: Lane) -> None:
        batch, held = ps.take_open()
        if batch is None:
            return
        account = self.settings.account(lane.account_id)
        redact = tuple(account.redact) if account is not None else ()
        lane.queue.append(Delivery(batch, redact, held, ps.generation))
        self._offsets.add(ps.tp, batch.first_offset, batch.last_offset)
        if len(lane.queue) >= self.options.max_queued_batches:
            for tp in lane.partitions:
                self._pause(self._partitions[tp], LANE_FULL)

    def _seal_aged(self, now: float) -> None:
        for ps in self._partitions.values():
            if ps.open is None or ps.lane_key is None:
                continue
            lane = self._lanes.get(ps.lane_key)
            if lane is not None and now - ps.open.opened_at >= lane.destination.batch.max_age_s:
                self._seal(ps, lane)

    def _count_expired(self, lane: Lane, ps: PartitionState, offset: int) -> None:
        """Records between ``ps.next_offset`` and ``offset`` were not read: transaction
        markers, or records the retention removed before they were delivered."""
        try:
            earliest = self._log.offset_for_time(ps.tp, 0)
        except LogError as exc:
            log.warning("earliest offset of %s unknown: %s", ps.tp.topic, exc)
            return
        lost = min(earliest, offset) - ps.next_offset
        if lost <= 0:
            return
        self._health[lane.key].expired_events += lost
        metrics.EVENTS_EXPIRED.labels(sink_type=lane.destination.type).inc(lost)
        log.error(
            "destination %s: %d events of %s[%d] expired before delivery (offsets %d..%d)",
            lane.destination_id,
            lost,
            ps.tp.topic,
            ps.tp.partition,
            ps.next_offset,
            ps.next_offset + lost - 1,
        )

    # delivery --------------------------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        """Start the attempts that are due, never more than there are delivery threads, and
        lanes in trouble (failing, or retrying) on at most half of them."""
        free = self._threads.limit - self._busy
        if free <= 0:
            return
        troubled_cap = max(1, self._threads.limit // 2)
        troubled_busy = sum(self._troubled_in_flight(x) for x in self._lanes.values())
        ready = [lane for lane in self._lanes.values() if lane.has_work()]
        if not ready:
            return
        self._rotation = (self._rotation + 1) % len(ready)
        for lane in ready[self._rotation :] + ready[: self._rotation]:
            troubled = self._troubled(lane)
            while free > 0 and (not troubled or troubled_busy < troubled_cap):
                delivery = lane.take(now, self._offsets.uncommitted)
                if delivery is None:
                    break
                self._submit(lane, delivery)
                free -= 1
                troubled_busy += troubled
            if free <= 0:
                return

    def _refresh_lane_full(self) -> None:
        """Partitions paused because their lane had enough batches waiting read again once
        it has fewer."""
        for lane in self._lanes.values():
            if len(lane.queue) < self.options.max_queued_batches:
                for tp in lane.partitions:
                    ps = self._partitions[tp]
                    if LANE_FULL in ps.pauses:
                        self._unpause(ps, LANE_FULL)

    def _troubled(self, lane: Lane) -> bool:
        return bool(lane.retries) or self._health[lane.key].state in FAILURE_STATES

    def _troubled_in_flight(self, lane: Lane) -> int:
        """Attempts in flight that are retries, or of a destination in a failure state."""
        if self._health[lane.key].state in FAILURE_STATES:
            return len(lane.in_flight)
        return sum(1 for d in lane.in_flight if d.attempts > 1)

    def _submit(self, lane: Lane, delivery: Delivery) -> None:
        destination, factory, results = lane.destination, self._factory, self._results

        def task() -> None:
            results.put(attempt(lane, delivery, destination, factory))

        self._busy += 1
        self._threads.submit(task)

    def _apply(self, result: AttemptResult) -> None:
        lane, delivery = result.lane, result.delivery
        if self._lanes.get(lane.key) is not lane:  # the destination was removed meanwhile
            lane.discard(delivery)
            if lane.idle():
                lane.close_sink()
                self._retiring.discard(lane)
            return
        ps = self._partitions.get(delivery.tp)
        current = ps is not None and ps.generation == delivery.generation
        if result.error is None and result.rejects and not self._dead_letter(result.rejects):
            result.error = TransientError("dead-letter topic write failed", cause="dlq")
            result.retryable = True
        if result.error is None:
            self._stored(lane, delivery, result, current)
        elif not current:
            lane.discard(delivery)
        elif lane.held:
            lane.failed(delivery, self._clock())  # retried when the owner resumes it
        else:
            self._failed(lane, delivery, result)

    def _stored(self, lane: Lane, delivery: Delivery, result: AttemptResult, current: bool) -> None:
        lane.succeeded(delivery)
        self._writes += 1
        if self.options.exit_after_writes and self._writes >= self.options.exit_after_writes:
            log.warning("fault injection: exiting after write %d, before commit", self._writes)
            os._exit(86)
        written = result.written
        events = len(delivery.batch.records) - len(result.rejects)
        sink_type = result.sink_type
        metrics.BATCH_WRITE_SECONDS.labels(sink_type=sink_type).observe(result.seconds)
        metrics.BATCHES.labels(sink_type=sink_type, outcome="written").inc()
        metrics.EVENTS_DELIVERED.labels(sink_type=sink_type).inc(events)
        if written is not None:
            metrics.BYTES_WRITTEN.labels(sink_type=sink_type).inc(written.bytes_written)
        health = self._health[lane.key]
        was = health.state
        health.succeeded(self._wall(), events)
        held = _held_state(lane.destination) if lane.held else None
        if held is not None:
            health.hold(held)  # an attempt that was under way when the owner paused it
        if current:
            self._offsets.stored(delivery.tp, delivery.batch.first_offset)
        if was in FAILURE_STATES:
            log.info("destination %s is active again (was %s)", lane.destination_id, was.value)
        for tp in lane.partitions:
            self._unpause(self._partitions[tp], BACKOFF)

    def _failed(self, lane: Lane, delivery: Delivery, result: AttemptResult) -> None:
        exc = result.error
        assert exc is not None
        health = self._health[lane.key]
        was = health.state
        permanent = not result.retryable
        wall = self._wall()
        quick = not permanent and was not in FAILURE_STATES
        if quick and health.consecutive_failures + 1 < self.options.retry_policy.attempts:
            health.retrying(message=str(exc), cause=exc.cause, now=wall)
        else:
            health.failed(permanent=permanent, message=str(exc), cause=exc.cause, now=wall)
        delay = retry.delay_after_failure(
            health.consecutive_failures,
            exc,
            permanent=permanent,
            policy=self.options.retry_policy,
            pause_base=self.options.pause_base,
            pause_cap=self.options.pause_cap,
        )
        if health.state is State.SUSPENDED:
            delay = max(delay, self.options.suspended_retry)
        lane.failed(delivery, self._clock() + delay)
        health.next_attempt_at = wall + delay
        cause = metrics.bounded_cause(exc.cause)
        metrics.BATCHES.labels(sink_type=result.sink_type, outcome="failed").inc()
        metrics.DELIVERY_ERRORS.labels(sink_type=result.sink_type, cause=cause).inc()
        if not permanent:
            metrics.RETRIES.labels(sink_type=result.sink_type, cause=cause).inc()
        if health.state in FAILURE_STATES and was not in FAILURE_STATES:
            self._back_off(lane)
        if health.state is State.SUSPENDED and was is not State.SUSPENDED:
            metrics.SUSPENSIONS.labels(cause=cause).inc()
        logger = log.warning if health.state is State.ACTIVE else log.error
        logger(
            "destination %s %s (%s); next attempt in %.1fs: %s",
            lane.destination_id,
            health.state.value,
            exc.cause,
            delay,
            exc,
        )

    def _back_off(self, lane: Lane) -> None:
        """The lane is failing: give back what it never sent and stop reading its
        partitions until a retry succeeds (the failed batch stays, to be retried as is)."""
        for delivery in lane.release_unsent():
            self._rewind(self._partitions[delivery.tp], delivery.batch.first_offset)
        for tp in lane.partitions:
            ps = self._partitions[tp]
            if ps.open is not None:
                self._rewind(ps, ps.open.first_offset)
            self._pause(ps, BACKOFF)

    def _advance_failures(self) -> None:
        """Suspend destinations failing for longer than ``suspend_after``."""
        wall = self._wall()
        for key, lane in self._lanes.items():
            health = self._health[key]
            if health.suspend_if_due(wall, self.options.suspend_after):
                cause = health.last_cause or "unknown"
                metrics.SUSPENSIONS.labels(cause=metrics.bounded_cause(cause)).inc()
                later = self._clock() + self.options.suspended_retry
                lane.retry_at = later if lane.retry_at is None else max(lane.retry_at, later)
                health.next_attempt_at = wall + self.options.suspended_retry
                log.error(
                    "destination %s suspended after failing since %s (%s): %s",
                    lane.destination_id,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(health.failing_since)),
                    cause,
                    health.last_error,
                )

    def _dead_letter(self, rejects: list[Reject]) -> bool:
        """Send ``rejects`` to the dead-letter topic; True once every one is stored."""

        def delivered(err: Exception | None, _r: OutgoingRecord) -> None:
            if err is not None:
                self._dlq_errors.append(err)

        for reject in rejects:
            record = reject.record
            metrics.EVENTS_DEAD_LETTERED.labels(reason=reject.reason).inc()
            log.warning(
                "dead-lettered %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                reject.detail,
            )
            self._dlq.produce(
                dead_letter(record, stage="sink", reason=reject.reason, detail=reject.detail),
                delivered,
            )
        remaining = self._dlq.flush(10.0)
        failed = bool(self._dlq_errors) or remaining > 0
        self._dlq_errors.clear()
        return not failed

    # offsets ---------------------------------------------------------------------------------

    def _commit(self, now: float) -> None:
        due = self._offsets.due()
        if not due or (self._commit_retry_at is not None and now < self._commit_retry_at):
            return
        try:
            self._consumer.commit(due)
        except LogError as exc:
            self._commit_failed(due, exc, now)
            return
        self._offsets.committed(due)
        if self._commit_failures:
            log.info("offsets committed again after %d failures", self._commit_failures)
            for key in self._lanes_of(due):
                health = self._health[key]
                if health.last_cause == "offset_commit" and health.state is State.FAILING:
                    health.state = State.ACTIVE
                    health.consecutive_failures = 0
                    health.failing_since = None
        self._commit_failures = 0
        self._commit_retry_at = None

    def _commit_failed(self, due: Mapping[TopicPartition, int], exc: LogError, now: float) -> None:
        """Stored batches stay uncommitted: their partitions send nothing new (so a crash
        replays at most one stored batch each) and the commit is retried with backoff. Their
        destinations report failing meanwhile: they are not moving."""
        self._commit_failures += 1
        metrics.OFFSET_COMMIT_FAILURES.inc()
        delay = min(
            self.options.commit_retry_cap,
            self.options.commit_retry_base * 2 ** min(self._commit_failures - 1, 20),
        )
        self._commit_retry_at = now + delay
        log.warning("offset commit failed (retry in %.1fs): %s", delay, exc)
        for key in self._lanes_of(due):
            health = self._health[key]
            if health.state is State.ACTIVE:
                health.failed(
                    permanent=False,
                    message=f"offsets cannot be committed, retrying: {exc}",
                    cause="offset_commit",
                    now=self._wall(),
                )

    def _lanes_of(self, tps: Iterable[TopicPartition]) -> set[LaneKey]:
        keys = set()
        for tp in tps:
            ps = self._partitions.get(tp)
            if ps is not None and ps.lane_key in self._lanes:
                keys.add(ps.lane_key)
        return keys

    def _rewind(self, ps: PartitionState, offset: int) -> None:
        """Read ``ps`` again from ``offset`` (batches from there on were never attempted)."""
        if ps.open is not None and ps.open.first_offset >= offset:
            ps.take_open()
        self._offsets.forget_from(ps.tp, offset)
        if offset < ps.next_offset:
            ps.next_offset = offset
            ps.needs_seek = True
            if not ps.pauses:
                self._seek(ps)

    def _first_unstored(self, ps: PartitionState) -> int:
        first = self._offsets.first_pending(ps.tp)
        if first is not None:
            return first
        return ps.open.first_offset if ps.open is not None else ps.next_offset

    def _revoked(self, partitions: set[TopicPartition]) -> None:
        """Partitions taken away: commit what is stored, forget the rest (the next owner
        reads it from the committed offset)."""
        due = {tp: o for tp, o in self._offsets.due().items() if tp in partitions}
        if due:
            try:
                self._consumer.commit(due)
            except LogError as exc:
                log.warning("commit on revocation failed: %s", exc)
        for tp in partitions:
            ps = self._partitions.pop(tp, None)
            self._offsets.drop(tp)
            if ps is None:
                continue
            if ps.lane_key is None:  # a destination never known here
                self._health.pop(("", topics.destination_of(tp.topic) or ""), None)
                continue
            lane = self._lanes.get(ps.lane_key)
            if lane is not None:
                lane.drop_partition(tp)
                lane.partitions.discard(tp)
                if not lane.partitions:
                    self._forget_lane(lane)  # delivered elsewhere now: its worker reports it

    # pausing ---------------------------------------------------------------------------------

    def _pause(self, ps: PartitionState, reason: str) -> None:
        if ps.add_pause(reason):
            self._consumer.pause([ps.tp])

    def _unpause(self, ps: PartitionState, reason: str) -> None:
        if ps.remove_pause(reason):
            if reason != LANE_FULL:
                ps.check_gap = True  # a long pause: retention may have removed records
            if ps.needs_seek and not self._seek(ps):
                return
            self._consumer.resume([ps.tp])

    def _seek(self, ps: PartitionState) -> bool:
        """Make the next read of ``ps`` start at ``ps.next_offset``. A seek the consumer
        refuses (a partition whose fetch is not set up yet) pauses the partition until a later
        step's seek succeeds: reading on from elsewhere would skip or repeat records."""
        try:
            self._consumer.seek(ps.tp, ps.next_offset)
        except LogError as exc:
            log.warning("seek of %s[%d] failed, retried: %s", ps.tp.topic, ps.tp.partition, exc)
            ps.needs_seek = True
            self._pause(ps, SEEK)
            return False
        ps.needs_seek = False
        return True

    def _retry_seeks(self) -> None:
        for ps in list(self._partitions.values()):
            if SEEK in ps.pauses:
                self._unpause(ps, SEEK)

    def _balance_memory(self) -> None:
        held: dict[LaneKey, int] = {key: lane.held_bytes() for key, lane in self._lanes.items()}
        for ps in self._partitions.values():
            if ps.open_held and ps.lane_key in held:
                held[ps.lane_key] += ps.open_held
        self._held_total = sum(held.values())
        metrics.BUFFERED_BYTES.set(self._held_total)
        self._memory_paused &= set(self._lanes)
        plan = backpressure.plan(held, self._memory_paused, self.options.max_buffered_bytes)
        for key in plan.pause:
            self._memory_paused.add(key)
            lane = self._lanes[key]
            for tp in lane.partitions:
                ps = self._partitions[tp]
                self._pause(ps, MEMORY)
                self._seal(ps, lane)  # it gets no more records: deliver it, free the memory
        for key in plan.resume:
            self._memory_paused.discard(key)
            for tp in self._lanes[key].partitions:
                self._unpause(self._partitions[tp], MEMORY)

    # settings --------------------------------------------------------------------------------

    def _follow_settings(self) -> None:
        self.settings.poll()
        self._reporter.maybe_publish(self.settings.unapplied())
        if self.settings.version == self._settings_version:
            return
        self._settings_version = self.settings.version
        for key, lane in list(self._lanes.items()):
            found = self.settings.destination(key[1])
            if found is None or found[0] != key[0]:
                self._remove_lane(lane)
            else:
                self._update_lane(lane, found[1])
        for ps in self._partitions.values():
            owner = self._lanes.get(ps.lane_key) if ps.lane_key is not None else None
            if owner is None or not owner.held:
                self._unpause(ps, HELD)  # read again: the settings decide anew
        self._adopt_quiet_partitions()

    def _update_lane(self, lane: Lane, destination: Destination) -> None:
        previous, lane.destination = lane.destination, destination
        health = self._health[lane.key]
        held = _held_state(destination)
        if held is not None:
            health.hold(held)
            if not lane.held:
                lane.held = True
                self._give_back(lane)
            return
        if lane.held:
            lane.held = False
            health.release()
            lane.retry_now()
        if destination.replay is not None:
            for tp in sorted(lane.partitions, key=lambda t: t.partition):
                self._replay_pending(lane, self._partitions[tp])
        if _delivery_settings(previous) != _delivery_settings(destination):
            lane.retry_now()  # new settings may well work: try now
            if health.state in FAILURE_STATES:
                health.next_attempt_at = None

    def _adopt_quiet_partitions(self) -> None:
        """Partitions assigned here that nothing was read from yet (a quiet destination): a
        replay requested for their destination applies to them too."""
        wanted = set()
        for tp in self._consumer.assignment():
            if tp in self._partitions:
                continue
            found = self.settings.destination(topics.destination_of(tp.topic) or "")
            if found is not None and found[1].replay is not None:
                wanted.add(tp)
        if not wanted:
            return
        self._open_partitions(wanted)
        for tp in wanted:
            ps = self._partitions[tp]
            lane = self._lane_of(ps, tp.topic)
            if lane is not None:
                self._replay_pending(lane, ps)

    def _give_back(self, lane: Lane) -> None:
        """Hand back every batch the lane never sent and stop reading its partitions."""
        for delivery in lane.release_unsent():
            self._rewind(self._partitions[delivery.tp], delivery.batch.first_offset)
        for tp in lane.partitions:
            ps = self._partitions[tp]
            if ps.open is not None:
                self._rewind(ps, ps.open.first_offset)
            self._pause(ps, HELD)

    def _remove_lane(self, lane: Lane) -> None:
        """The destination is gone (deleted, or now another account's): forget its state;
        its records wait in the topic, read again as the settings then say."""
        for tp in lane.partitions:
            ps = self._partitions[tp]
            start = self._first_unstored(ps)
            lane.drop_partition(tp)
            ps.take_open()
            self._offsets.drop(tp)
            ps.generation = next(self._generations)
            ps.lane_key = None
            ps.replay_id = None
            self._rewind(ps, start)
            for reason in (BACKOFF, LANE_FULL, MEMORY):
                ps.pauses.discard(reason)
            self._pause(ps, HELD)
        self._forget_lane(lane)
        log.info("destination %s of %s removed", lane.destination_id, lane.account_id)

    def _forget_lane(self, lane: Lane) -> None:
        """Drop the lane and the destination's state; its sink is closed once no attempt is
        under way."""
        del self._lanes[lane.key]
        self._health.pop(lane.key, None)
        self._memory_paused.discard(lane.key)
        self._status.forget(lane.destination_id)
        self._signals.forget(lane.destination_id)
        lane.release_unsent()
        if lane.in_flight:
            self._retiring.add(lane)
        else:
            lane.close_sink()

    # replays ---------------------------------------------------------------------------------

    def _replay_pending(self, lane: Lane, ps: PartitionState) -> bool:
        """Apply the destination's replay request to ``ps`` if it was not applied yet. True
        if ``ps`` was rewound."""
        replay = lane.destination.replay
        if replay is None:
            return False
        health = self._health[lane.key]
        if health.applied_replay_id == replay.id and (
            str(ps.tp.partition) in health.replay_until or not health.replay_until
        ):
            return False
        return self._apply_replay(lane, ps, replay)

    def _apply_replay(self, lane: Lane, ps: PartitionState, replay: Replay) -> bool:
        """Deliver again every record of ``ps`` from ``replay.from_time``: what was read but
        not stored is dropped, the offset is committed back to the start (a crash resumes
        the replay), and the records up to where reading stood get the replay's identity."""
        try:
            offset = self._log.offset_for_time(ps.tp, int(replay.from_time.timestamp() * 1000))
        except LogError as exc:
            log.warning("replay %s of %s not applied yet: %s", replay.id, lane.destination_id, exc)
            return False
        health = self._health[lane.key]
        if health.applied_replay_id != replay.id:
            health.applied_replay_id = replay.id
            health.replay_until = {}
        until = ps.next_offset
        start = min(offset, self._first_unstored(ps))
        lane.drop_partition(ps.tp)
        ps.take_open()
        self._offsets.drop(ps.tp)
        ps.generation = next(self._generations)
        try:
            self._consumer.commit({ps.tp: start})
        except LogError as exc:
            log.warning("replay %s: commit of the start failed: %s", replay.id, exc)
        ps.next_offset = start
        ps.needs_seek = True
        ps.replay_id, ps.replay_until = replay.id, until
        health.replay_until[str(ps.tp.partition)] = until
        self._unpause(ps, BACKOFF)  # the dropped retries are part of the replay: try now
        if not ps.pauses and ps.needs_seek:
            self._seek(ps)
        log.info(
            "destination %s: replay %s of %s[%d] from offset %d (again up to %d)",
            lane.destination_id,
            replay.id,
            ps.tp.topic,
            ps.tp.partition,
            start,
            until,
        )
        self._status.maybe_publish(lane.destination_id, health)
        self._status.flush()
        return True

    # reports ---------------------------------------------------------------------------------

    def _report(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._reported_at < 1.0:
            return
        self._reported_at = now
        published = False
        counts = dict.fromkeys(State, 0)
        for key, health in self._health.items():
            counts[health.state] += 1
            if key[0]:
                published |= self._status.maybe_publish(key[1], health)
        if published:
            self._status.flush(1.0)
        for state, n in counts.items():
            metrics.DESTINATIONS.labels(state=state.value).set(n)
        paused = dict.fromkeys(PAUSE_REASONS, 0)
        for ps in self._partitions.values():
            for reason in ps.pauses:
                paused[reason] += 1
        for reason, n in paused.items():
            metrics.PAUSED_PARTITIONS.labels(reason=reason).set(n)
        metrics.ATTEMPTS_IN_FLIGHT.set(self._busy)
        if self.options.destination_metrics:
            self._signals.update(
                {
                    lane.destination_id: [(tp, self._undelivered(tp)) for tp in lane.partitions]
                    for lane in self._lanes.values()
                }
            )

    def _undelivered(self, tp: TopicPartition) -> Undelivered:
        ps = self._partitions.get(tp)
        if ps is None:
            return Undelivered(0, None)
        first = self._first_unstored(ps)
        lane = self._lanes.get(ps.lane_key) if ps.lane_key is not None else None
        if lane is not None:
            for group in (lane.in_flight, lane.retries, lane.queue):
                for d in group:
                    if d.tp == tp and d.batch.first_offset == first:
                        return Undelivered(first, d.batch.records[0].timestamp_ms)
        if ps.open is not None and ps.open.first_offset == first:
            return Undelivered(first, ps.open.records[0].timestamp_ms)
        return Undelivered(first, None)

    def _restore_reports(self) -> dict[str, dict[str, Any]]:
        """The last status record of every destination (replays applied before, events
        expired), so a restarted worker neither replays again nor forgets."""
        latest: dict[str, dict[str, Any]] = {}

        def apply(record: Record) -> None:
            if record.key is None:
                return
            dest_id = record.key.decode(errors="replace")
            if not record.value:
                latest.pop(dest_id, None)
                return
            try:
                latest[dest_id] = decode_status(record.value)
            except ValueError:
                log.warning("status record of %s is not JSON; ignored", dest_id)

        view = CompactedTopicView(self._log, topics.STATUS, apply)
        try:
            view.catch_up(30.0)
        except TimeoutError as exc:
            log.warning("status topic not read to its end (%s): earlier replays may repeat", exc)
        finally:
            view.close()
        return latest

    # lifecycle -------------------------------------------------------------------------------

    def drain(self, timeout: float | None = None) -> bool:
        """Seal every open batch and deliver what can be delivered now; returns when no
        attempt is in flight and no lane has a batch it may send now (lanes waiting for a
        retry are not waited for), or after ``timeout`` seconds of real time (default
        ``options.drain_timeout``). True if every batch read was stored."""
        for ps in self._partitions.values():
            lane = self._lanes.get(ps.lane_key) if ps.lane_key is not None else None
            if lane is not None and ps.open is not None:
                self._seal(ps, lane)
        deadline = time.monotonic() + (self.options.drain_timeout if timeout is None else timeout)
        while True:
            self._collect()
            now = self._clock()
            self._commit(now)
            self._dispatch(now)
            sending = any(self._may_send(lane, now) for lane in self._lanes.values())
            if self._busy == 0 and not sending:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._await_result(min(0.05, remaining))
        self._collect()
        self._commit(self._clock())
        self._report(self._clock(), force=True)
        return all(lane.idle() for lane in self._lanes.values())

    def _may_send(self, lane: Lane, now: float) -> bool:
        if lane.held or not lane.has_work():
            return False
        return lane.retry_at is None or now >= lane.retry_at

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, then drain (within ``options.drain_timeout``): what
        is not stored by then is not committed, and is read again by the next owner."""
        while not stop.is_set():
            self.step()
        if not self.drain():
            log.warning(
                "stopping with %d attempts in flight; their batches are not committed",
                self._busy,
            )

    def close(self) -> None:
        self._threads.close()
        self._signals.close()
        for lane in [*self._lanes.values(), *self._retiring]:
            if not lane.in_flight:
                lane.close_sink()
        self._dlq.close()
        for key, health in self._health.items():
            if key[0]:
                self._status.forget(key[1])
                self._status.maybe_publish(key[1], health)
        self._status.close()
        self._reporter.close()
        self._consumer.close()
        self.settings.close()


def _held_state(destination: Destination) -> State | None:
    if not destination.enabled:
        return State.DISABLED
    if destination.paused:
        return State.PAUSED
    return None


def _delivery_settings(destination: Destination) -> dict[str, Any]:
    """The settings an attempt depends on (not the owner's switches or replay requests)."""
    return destination.model_dump(exclude={"enabled", "paused", "deleting", "replay"})
