"""Reading records into batches: each polled run of a partition goes to its destination's
lane (opened on first sight, held while the destination is unknown, paused or disabled), into
the partition's open batch, which is sealed into the lane's queue at its count, byte or age
limit. Records missing between two reads (retention) are counted as expired.

Offsets read again after a batch of them was sent (a failed commit and a revocation, a
reassignment, a rewind) are cut to that batch's boundaries instead (:mod:`sinks.batch_manifests`,
ADR 018): the same records under the same idempotency key or object key. Such a batch is
sealed at its last offset, not by count, bytes or age.
"""

from __future__ import annotations

import itertools
import logging

from auditstream.config.destinations import Destination
from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Record, TopicPartition
from auditstream.sinks import metrics
from auditstream.sinks.batch import DECODED_SIZE_FACTOR, Batch, decoded_size
from auditstream.sinks.health import DestinationHealth, State
from auditstream.sinks.lanes import Delivery, Lane, LaneKey
from auditstream.sinks.partitions import DROPPING, HELD, LANE_FULL, PartitionState
from auditstream.sinks.replays import Replays
from auditstream.sinks.status_reports import restore_health
from auditstream.sinks.worker_state import held_state

_OBJECT_STORE_TYPES = frozenset({"s3", "gcs", "azure_blob", "local"})

log = logging.getLogger(__name__)

MANIFEST_PATIENCE = 10
"""A batch cut to sent boundaries waits for its last record up to this many times its
destination's ``max_age_s`` (at least a minute); then it is sealed as it is (a new key, logged):
its remaining records are not coming (removed by retention)."""


class Batching(Replays):
    """Takes polled records into per-partition batches and seals them into lanes."""

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
        for tp, spans in self._manifest_log.read(new).items():
            for first, last in spans:  # sent by this worker or the partition's last owner
                self._manifests.sent(tp, first, last)
        for tp in new:
            if known:
                self._manifests.committed(tp, committed.get(tp, 0))
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
        restored = self._restored.get(key[1])
        if restored is not None and restored.get("account_id") in (None, key[0]):
            restore_health(health, restored)
            self._announcer.restored(key, health)
        held = held_state(destination)
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
        sent = self._manifests.covering(ps.tp, record.offset)
        if ps.open is not None and self._manifests.covering(ps.tp, ps.open.first_offset) != sent:
            self._seal(ps, lane)  # into or out of a sent batch's boundaries
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
        if sent is not None:
            if record.offset >= sent[1]:
                self._seal(ps, lane)  # the batch that was sent, again
        elif len(batch.records) >= limits.max_events or batch.size_bytes >= limits.max_bytes:
            self._seal(ps, lane)

    def _awaits_sent_end(self, ps: PartitionState) -> bool:
        """Whether the open batch is cut to a sent batch's boundaries and its last record
        has not been read yet: sealing it now would send part of it under a new key."""
        if ps.open is None:
            return False
        sent = self._manifests.covering(ps.tp, ps.open.first_offset)
        return sent is not None and ps.open.last_offset < sent[1]

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
            if lane is None:
                continue
            age, max_age = now - ps.open.opened_at, lane.destination.batch.max_age_s
            if self._awaits_sent_end(ps):
                if age < max(60.0, MANIFEST_PATIENCE * max_age):
                    continue
                log.warning(
                    "destination %s: %s[%d] offsets %d.. were sent up to %d, whose records "
                    "did not come again; sent as they are, under a new key",
                    lane.destination_id,
                    ps.tp.topic,
                    ps.tp.partition,
                    ps.open.first_offset,
                    ps.open.last_offset,
                )
                self._seal(ps, lane)
            elif age >= max_age:
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
