"""The state the parts of the sink worker share, and the primitive moves on it.

:class:`~sinks.worker.SinkWorker` is assembled from one class per concern (batching, replays,
dispatch, attempt outcomes, commits, settings, memory, reports), each a subclass of
:class:`WorkerState`: one poll loop thread owns all of this state, so the parts work on it
directly. The moves every part needs live here: pausing, resuming and seeking a partition,
rewinding it, and forgetting a lane.
"""

from __future__ import annotations

import itertools
import logging
import queue
from collections.abc import Callable
from typing import Any

from auditstream.config.destinations import Destination
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Consumer, Log, Producer, TopicPartition
from auditstream.pipeline.process_reports import ProcessReporter
from auditstream.pipeline.settings_view import SettingsView
from auditstream.sinks.attempts import AttemptResult
from auditstream.sinks.batch_manifests import BatchManifests
from auditstream.sinks.committer import Committer
from auditstream.sinks.delivery_threads import DeliveryThreads
from auditstream.sinks.destination_signals import DestinationSignals
from auditstream.sinks.health import DestinationHealth, State
from auditstream.sinks.lanes import Lane, LaneKey, SinkFactory
from auditstream.sinks.manifest_log import ManifestLog
from auditstream.sinks.offsets import OffsetBook
from auditstream.sinks.partitions import LANE_FULL, SEEK, PartitionState
from auditstream.sinks.state_events import StateAnnouncer
from auditstream.sinks.status import StatusPublisher
from auditstream.sinks.worker_options import WorkerOptions

log = logging.getLogger(__name__)


class WorkerState:
    """The sink worker's state (set up by ``SinkWorker.__init__``)."""

    options: WorkerOptions
    settings: SettingsView
    worker_id: str
    _settings_version: int
    _log: Log
    _consumer: Consumer
    _producer: Producer
    """Dead letters and audit events."""
    _dlq_errors: list[Exception]
    _factory: SinkFactory
    _clock: Callable[[], float]
    _wall: Callable[[], float]
    _lanes: dict[LaneKey, Lane]
    _retiring: set[Lane]
    _partitions: dict[TopicPartition, PartitionState]
    _health: dict[LaneKey, DestinationHealth]
    _offsets: OffsetBook
    _manifests: BatchManifests
    """Boundaries of batches sent and not committed: records read again are cut to them."""
    _manifest_log: ManifestLog
    """The same, stored in the log for the worker that takes a partition over."""
    _results: queue.SimpleQueue[AttemptResult]
    _threads: DeliveryThreads
    _busy: int
    _writes: int
    _generations: itertools.count[int]
    _memory_paused: set[LaneKey]
    _held_total: int
    _record_estimate: float
    _rotation: int
    _commit_retry_at: float | None
    _commit_failures: int
    _commit_stall_reported: bool
    _committer: Committer
    _reported_at: float
    _reporter: ProcessReporter
    _status: StatusPublisher
    _signals: DestinationSignals
    _restored: dict[str, dict[str, Any]]
    _status_view: CompactedTopicView
    _announcer: StateAnnouncer

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

    # rewinding -------------------------------------------------------------------------------

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

    # lanes -----------------------------------------------------------------------------------

    def _forget_lane(self, lane: Lane) -> None:
        """Drop the lane and the destination's state; its sink is closed once no attempt is
        under way."""
        del self._lanes[lane.key]
        self._health.pop(lane.key, None)
        self._memory_paused.discard(lane.key)
        self._status.forget(lane.destination_id)
        self._announcer.forget(lane.key)
        self._signals.forget(lane.destination_id)
        lane.release_unsent()
        if lane.in_flight:
            self._retiring.add(lane)
        else:
            lane.close_sink()


def held_state(destination: Destination) -> State | None:
    if not destination.enabled:
        return State.DISABLED
    if destination.paused:
        return State.PAUSED
    return None
