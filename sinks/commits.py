"""Committing the sink worker's offsets: what the offset book says is stored is committed
each step; a failed commit is retried with backoff (its partitions send nothing new
meanwhile, and their destinations report failing); revoked partitions commit what is stored
and are forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import TopicPartition
from auditstream.sinks import metrics
from auditstream.sinks.health import State
from auditstream.sinks.lanes import LaneKey
from auditstream.sinks.worker_state import WorkerState

log = logging.getLogger(__name__)


class OffsetCommits(WorkerState):
    """Commits stored batches' offsets, retries failed commits, handles revocations."""

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
