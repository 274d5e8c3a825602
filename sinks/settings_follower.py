"""Following the settings: when the settings change, every lane is updated (new delivery
settings are tried at once; paused or disabled destinations give back their unsent batches
and stop reading) or removed (deleted, or now another account's: its records are read again as
the settings then say); quiet partitions of a destination with a replay request are adopted.
"""

from __future__ import annotations

import logging
from typing import Any

from auditstream.config.destinations import Destination
from auditstream.pipeline import topics
from auditstream.sinks.batching import Batching
from auditstream.sinks.health import FAILURE_STATES
from auditstream.sinks.lanes import Lane
from auditstream.sinks.partitions import BACKOFF, HELD, LANE_FULL, MEMORY
from auditstream.sinks.worker_state import held_state

log = logging.getLogger(__name__)


class SettingsFollower(Batching):
    """Applies settings changes to lanes and partitions."""

    def _follow_settings(self) -> None:
        self.settings.poll()
        self._reporter.maybe_publish(self.settings.unapplied())
        if self.settings.version == self._settings_version:
            return
        self._settings_version = self.settings.version
        # A deleted destination's sent boundaries go with it (an id created again starts anew).
        self._manifests.retain(
            lambda tp: self.settings.destination(topics.destination_of(tp.topic) or "") is not None
        )
        for key, lane in list(self._lanes.items()):
            found = self.settings.destination(key[1])
            if found is None or found[0] != key[0]:
                self._remove_lane(lane)
            else:
                self._update_lane(lane, found[1])
        for ps in self._partitions.values():
            owner = self._lanes.get(ps.lane_key) if ps.lane_key is not None else None
            if owner is None or not owner.held:
                self._unpause(ps, HELD)  # read again: the settings decide anew
        self._adopt_quiet_partitions()

    def _update_lane(self, lane: Lane, destination: Destination) -> None:
        previous, lane.destination = lane.destination, destination
        health = self._health[lane.key]
        held = held_state(destination)
        if held is not None:
            health.hold(held)
            if not lane.held:
                lane.held = True
                self._give_back(lane)
            return
        if lane.held:
            lane.held = False
            health.release()
            lane.retry_now()
        if destination.replay is not None:
            for tp in sorted(lane.partitions, key=lambda t: t.partition):
                self._replay_pending(lane, self._partitions[tp])
        if _delivery_settings(previous) != _delivery_settings(destination):
            lane.retry_now()  # new settings may well work: try now
            if health.state in FAILURE_STATES:
                health.next_attempt_at = None

    def _adopt_quiet_partitions(self) -> None:
        """Partitions assigned here that nothing was read from yet (a quiet destination): a
        replay requested for their destination applies to them too."""
        wanted = set()
        for tp in self._consumer.assignment():
            if tp in self._partitions:
                continue
            found = self.settings.destination(topics.destination_of(tp.topic) or "")
            if found is not None and found[1].replay is not None:
                wanted.add(tp)
        if not wanted:
            return
        self._open_partitions(wanted)
        for tp in wanted:
            ps = self._partitions[tp]
            lane = self._lane_of(ps, tp.topic)
            if lane is not None:
                self._replay_pending(lane, ps)

    def _give_back(self, lane: Lane) -> None:
        """Hand back every batch the lane never sent and stop reading its partitions."""
        for delivery in lane.release_unsent():
            self._rewind(self._partitions[delivery.tp], delivery.batch.first_offset)
        for tp in lane.partitions:
            ps = self._partitions[tp]
            if ps.open is not None:
                self._rewind(ps, ps.open.first_offset)
            self._pause(ps, HELD)

    def _remove_lane(self, lane: Lane) -> None:
        """The destination is gone (deleted, or now another account's): forget its state;
        its records wait in the topic, read again as the settings then say."""
        for tp in lane.partitions:
            ps = self._partitions[tp]
            start = self._first_unstored(ps)
            self._manifests.drop(tp)  # another account's now: its deliveries start anew
            lane.drop_partition(tp)
            ps.take_open()
            self._offsets.drop(tp)
            ps.generation = next(self._generations)
            ps.lane_key = None
            ps.replay_id = None
            self._rewind(ps, start)
            for reason in (BACKOFF, LANE_FULL, MEMORY):
                ps.pauses.discard(reason)
            self._pause(ps, HELD)
        self._forget_lane(lane)
        self._restored.pop(lane.destination_id, None)  # created again: it starts afresh
        log.info("destination %s of %s removed", lane.destination_id, lane.account_id)


def _delivery_settings(destination: Destination) -> dict[str, Any]:
    """The settings an attempt depends on (not the owner's switches or replay requests)."""
    return destination.model_dump(exclude={"enabled", "paused", "deleting", "replay"})
