"""Starting delivery attempts: due batches of every lane go to the bounded delivery threads,
round-robin over the lanes, lanes in trouble (failing or retrying) on at most half of the
threads; partitions paused because their lane was full read again once it has room.
"""

from __future__ import annotations

import logging

from auditstream.sinks.attempts import attempt
from auditstream.sinks.health import FAILURE_STATES
from auditstream.sinks.lanes import Delivery, Lane
from auditstream.sinks.partitions import LANE_FULL
from auditstream.sinks.worker_state import WorkerState

log = logging.getLogger(__name__)

EVENT_ID_DEDUP = frozenset({"splunk_hec", "datadog_logs", "azure_monitor_logs"})
"""Kinds whose receivers detect repeats by the event ids in their rows, not by a batch's
boundaries: their boundaries are kept in memory only (nothing to gain from storing them)."""


class Dispatch(WorkerState):
    """Starts the attempts that are due."""

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
        starting: list[tuple[Lane, Delivery]] = []
        for lane in ready[self._rotation :] + ready[: self._rotation]:
            troubled = self._troubled(lane)
            while free > 0 and (not troubled or troubled_busy < troubled_cap):
                delivery = lane.take(now, self._offsets.uncommitted)
                if delivery is None:
                    break
                starting.append((lane, delivery))
                free -= 1
                troubled_busy += troubled
            if free <= 0:
                break
        self._keep_boundaries(starting)
        for lane, delivery in starting:
            self._submit(lane, delivery)

    def _keep_boundaries(self, starting: list[tuple[Lane, Delivery]]) -> None:
        """The boundaries of batches about to be attempted for the first time are kept, and
        stored in the log (all in one wait) where a repeat is detected by them (ADR 018)."""
        stored = set()
        for lane, delivery in starting:
            if delivery.attempts != 1:
                continue
            tp, batch = delivery.tp, delivery.batch
            self._manifests.sent(tp, batch.first_offset, batch.last_offset)
            if lane.destination.type not in EVENT_ID_DEDUP:
                stored.add(tp)
        if stored:
            self._manifest_log.write({tp: self._manifests.spans(tp) for tp in stored})

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
