"""Replays in the sink worker: a destination's replay request rewinds each of its partitions
to the first record at or after the replay's start, once per partition, and the records up to
where reading stood are delivered again with the replay's identity (a new idempotency key).
What was applied is kept in the destination's health, so a restarted worker does not replay
again.
"""

from __future__ import annotations

import logging

from auditstream.config.destinations import Replay
from auditstream.pipeline.errors import LogError
from auditstream.sinks.lanes import Lane
from auditstream.sinks.partitions import BACKOFF, PartitionState
from auditstream.sinks.worker_state import WorkerState

log = logging.getLogger(__name__)


class Replays(WorkerState):
    """Applies destinations' replay requests to their partitions."""

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
