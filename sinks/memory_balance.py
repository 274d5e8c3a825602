"""Memory balancing: the records every lane holds are summed each step; past the cap the
fullest lanes stop reading (their open batches are sealed, to be delivered and freed), and they
read again once there is room (:mod:`sinks.backpressure` decides which).
"""

from __future__ import annotations

import logging

from auditstream.sinks import backpressure, metrics
from auditstream.sinks.batching import Batching
from auditstream.sinks.lanes import LaneKey
from auditstream.sinks.partitions import MEMORY

log = logging.getLogger(__name__)


class MemoryBalancer(Batching):
    """Pauses and resumes lanes' partitions to keep the records held under the cap."""

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
                if not self._awaits_sent_end(ps):  # else it needs the records polled already
                    self._seal(ps, lane)  # it gets no more records: deliver it, free the memory
        for key in plan.resume:
            self._memory_paused.discard(key)
            for tp in self._lanes[key].partitions:
                self._unpause(self._partitions[tp], MEMORY)
