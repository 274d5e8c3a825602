"""The sink worker's reports: destinations' health to the status topic and to metrics, lag
and oldest-undelivered age per destination, the audit events of suspensions
(:mod:`sinks.state_events`); and the status topic followed, so that a destination's lane opens
with its last report (a restarted worker neither replays again, nor forgets a failure under way,
nor announces a suspension twice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Record, TopicPartition
from auditstream.sinks import metrics
from auditstream.sinks.destination_signals import Undelivered
from auditstream.sinks.health import FAILURE_STATES, DestinationHealth, State
from auditstream.sinks.lanes import LaneKey
from auditstream.sinks.partitions import PAUSE_REASONS
from auditstream.sinks.status import decode_status
from auditstream.sinks.worker_state import WorkerState

log = logging.getLogger(__name__)


class StatusReports(WorkerState):
    """Publishes health, signals and the audit events of suspensions; follows the status
    topic to restore a destination's last report when its lane opens."""

    def _report(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._reported_at < 1.0:
            return
        self._reported_at = now
        self._poll_status_topic()
        waiting = self._announce(1.0)
        published = False
        counts = dict.fromkeys(State, 0)
        for key, health in self._health.items():
            counts[health.state] += 1
            # A state whose audit event is not stored yet is not reported yet: a status
            # record saying suspended means the suspension was announced.
            if key[0] and key not in waiting:
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

    def _announce(self, timeout: float) -> set[LaneKey]:
        """Produce the audit events of the suspensions and returns to active not announced
        yet; the destinations whose event is not stored yet."""
        for key, lane in self._lanes.items():
            self._announcer.follow(key, lane.destination, self._health[key])
        self._announcer.deliver(timeout)
        return self._announcer.pending_keys()

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

    def _open_status_view(self) -> CompactedTopicView:
        """A view of the status topic into ``_restored`` (the last record of every
        destination), read to its end by :meth:`_catch_up_status_view` and followed after: a
        lane opened later (at start, or when a rebalance brings a destination here) starts
        from its destination's last report: replays applied, events expired, and a failure
        under way (so a suspension is neither forgotten nor announced twice)."""

        def apply(record: Record) -> None:
            if record.key is None:
                return
            dest_id = record.key.decode(errors="replace")
            if not record.value:
                self._restored.pop(dest_id, None)
                return
            try:
                self._restored[dest_id] = decode_status(record.value)
            except ValueError:
                log.warning("status record of %s is not JSON; ignored", dest_id)

        return CompactedTopicView(self._log, topics.STATUS, apply)

    def _catch_up_status_view(self) -> None:
        """Read the status topic to its end (see :meth:`_open_status_view`). Raises
        :class:`LogError` if the log cannot be read."""
        try:
            self._status_view.catch_up(30.0)
        except TimeoutError as exc:
            log.warning("status topic not read to its end (%s): earlier replays may repeat", exc)
        except BaseException:
            self._status_view.close()
            raise

    def _poll_status_topic(self) -> None:
        try:
            self._status_view.poll()
        except LogError as exc:
            log.warning("status topic not read: %s", exc)


def restore_health(health: DestinationHealth, record: Mapping[str, Any]) -> None:
    """Set ``health`` (new) from its destination's last status ``record``: the replay applied,
    the events expired, and a failure under way with its start, so that the time to
    suspension runs on across restarts and a suspended destination stays suspended until a
    batch is stored."""
    health.applied_replay_id = record.get("applied_replay_id")
    health.replay_until = dict(record.get("replay_until") or {})
    health.expired_events = int(record.get("expired_events") or 0)
    try:
        state = State(str(record.get("state")))
    except ValueError:
        return
    if state not in FAILURE_STATES:
        return
    health.state = state
    health.failing_since = _number(record.get("failing_since"))
    health.suspended_at = _number(record.get("suspended_at"))
    health.consecutive_failures = int(record.get("consecutive_failures") or 1)
    health.last_error = record.get("last_error")
    health.last_cause = record.get("last_cause")
    health.last_success_at = _number(record.get("last_success_at"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
