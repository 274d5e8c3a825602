"""The sink worker's reports: destinations' health to the status topic and to metrics, lag
and oldest-undelivered age per destination, and, at start, the last status record of every
destination, restored so a restarted worker neither replays again nor forgets.
"""

from __future__ import annotations

import logging
from typing import Any

from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.log import Record, TopicPartition
from auditstream.sinks import metrics
from auditstream.sinks.destination_signals import Undelivered
from auditstream.sinks.health import State
from auditstream.sinks.partitions import PAUSE_REASONS
from auditstream.sinks.status import decode_status
from auditstream.sinks.worker_state import WorkerState

log = logging.getLogger(__name__)


class StatusReports(WorkerState):
    """Publishes health and signals; restores the last reports at start."""

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
