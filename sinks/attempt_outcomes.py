"""Applying finished delivery attempts: a stored batch moves its partition's committable
offset and makes its destination active; a failed one is kept in its lane for a retry and
moves the destination along its state machine (:mod:`sinks.health`): failing, error,
suspended; rejected records go to the dead-letter topic first.
"""

from __future__ import annotations

import logging
import os
import time

from auditstream.pipeline.dead_letters import dead_letter
from auditstream.pipeline.log import OutgoingRecord
from auditstream.sinks import metrics, retry
from auditstream.sinks.attempts import AttemptResult, Reject
from auditstream.sinks.errors import TransientError
from auditstream.sinks.health import FAILURE_STATES, State
from auditstream.sinks.lanes import Delivery, Lane
from auditstream.sinks.partitions import BACKOFF
from auditstream.sinks.worker_state import WorkerState, held_state

log = logging.getLogger(__name__)


class AttemptOutcomes(WorkerState):
    """Applies the results of delivery attempts to lanes, offsets and health."""

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
        held = held_state(lane.destination) if lane.held else None
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
        if health.state in FAILURE_STATES and (was not in FAILURE_STATES or self._reading(lane)):
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

    def _reading(self, lane: Lane) -> bool:
        """Whether a partition of ``lane`` reads although its destination is failing: it was
        restored failing from the status topic, attached while failing, or rewound for a
        replay."""
        return any(BACKOFF not in self._partitions[tp].pauses for tp in lane.partitions)

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
            self._producer.produce(
                dead_letter(record, stage="sink", reason=reject.reason, detail=reject.detail),
                delivered,
            )
        remaining = self._producer.flush(10.0)
        failed = bool(self._dlq_errors) or remaining > 0
        self._dlq_errors.clear()
        return not failed
