"""Committing the sink worker's offsets: what the offset book says is stored is committed
each step; a failed commit is retried with backoff (its partitions send nothing new
meanwhile, and their destinations report failing); revoked partitions commit what is stored
and are forgotten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import TopicPartition
from auditstream.sinks import metrics
from auditstream.sinks.health import State
from auditstream.sinks.lanes import LaneKey
from auditstream.sinks.partitions import PartitionState
from auditstream.sinks.worker_state import WorkerState

log = logging.getLogger(__name__)


class OffsetCommits(WorkerState):
    """Commits stored batches' offsets, retries failed commits, handles revocations."""

    def _commit(self, now: float) -> None:
        """Commit what is stored, on the commit thread; wait for it up to
        ``options.commit_wait`` (real time). A commit that takes longer is stalled: its
        destinations report it, and each later step checks it again; no other commit starts
        before it ends."""
        if self._committer.busy:
            self._commit_outcome(now, 0.0)
            return
        due = self._offsets.due()
        if not due or (self._commit_retry_at is not None and now < self._commit_retry_at):
            return
        self._committer.start(due)
        self._commit_outcome(now, self.options.commit_wait)

    def _commit_outcome(self, now: float, wait: float) -> None:
        done = self._committer.outcome(wait)
        if done is None:
            self._commit_stalled(now)
            return
        if done.error is not None:
            self._commit_failed(done.offsets, done.error, now)
            return
        self._offsets.committed(dict(done.offsets))
        for tp, offset in done.offsets.items():
            self._manifests.committed(tp, offset)
        if self._commit_failures:
            log.info("offsets committed again after %d failures", self._commit_failures)
        # Every destination whose offsets move again (also those that only waited for the
        # stalled commit of another) is active again.
        for key in self._lanes_of(done.offsets):
            health = self._health[key]
            if health.last_cause == "offset_commit" and health.state is State.FAILING:
                health.state = State.ACTIVE
                health.consecutive_failures = 0
                health.failing_since = None
        self._commit_failures = 0
        self._commit_retry_at = None
        self._commit_stall_reported = False

    def _commit_stalled(self, now: float) -> None:
        """The commit under way has not ended: counted as a failure once, and reported by
        every destination with a stored batch waiting for a commit (no commit can be made
        before this one ends)."""
        running, started = self._committer.running, self._committer.started_at
        if running is None or started is None:
            return
        waited = time.monotonic() - started
        exc = LogError(f"no answer for {waited:.0f} s (waiting for the group coordinator?)")
        if not self._commit_stall_reported:
            self._commit_stall_reported = True
            self._commit_failed(running, exc, now)
        self._report_commit_failure({**self._offsets.due(), **running}, exc)

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
        self._report_commit_failure(due, exc)

    def _report_commit_failure(self, due: Mapping[TopicPartition, int], exc: LogError) -> None:
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
        reads it from the committed offset). The boundaries of batches sent and not committed
        are kept: assigned here again, the partition is cut to them."""
        due = {tp: o for tp, o in self._offsets.due().items() if tp in partitions}
        if due:
            try:
                self._consumer.commit(due)
            except LogError as exc:
                log.warning("commit on revocation failed: %s", exc)
            else:
                for tp, offset in due.items():
                    self._manifests.committed(tp, offset)
        for tp in partitions:
            ps = self._partitions.pop(tp, None)
            self._offsets.drop(tp)
            if ps is None:
                continue
            if ps.pauses:
                self._resume_revoked(ps)
            if ps.lane_key is None:  # a destination never known here
                self._health.pop(("", topics.destination_of(tp.topic) or ""), None)
                continue
            lane = self._lanes.get(ps.lane_key)
            if lane is not None:
                lane.drop_partition(tp)
                lane.partitions.discard(tp)
                if not lane.partitions:
                    self._forget_lane(lane)  # delivered elsewhere now: its worker reports it

    def _resume_revoked(self, ps: PartitionState) -> None:
        """Kafka keeps a partition's pause across a rebalance: paused when taken away, it would
        stay paused when assigned here again, while the worker, which forgets it now, would
        never resume it (a destination stalled after a broker restart). Resume it now."""
        try:
            self._consumer.resume([ps.tp])
        except Exception as exc:  # the client's own exception type: the partition is gone
            log.warning("resume of revoked %s[%d] failed: %s", ps.tp.topic, ps.tp.partition, exc)
