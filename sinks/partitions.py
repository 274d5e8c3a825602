"""What the poll loop knows of each destination topic partition it reads: where reading
stands, the batch being filled, why the partition is paused, and which replay it is in.

A partition is paused while any reason holds (:data:`PAUSE_REASONS`); when the last one ends
it is resumed at ``next_offset``, the offset after the last record taken into a batch, so
records dropped while it was paused (:data:`DROPPING`) or given back by a lane are read
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditstream.pipeline.log import TopicPartition
from auditstream.sinks.batch import Batch
from auditstream.sinks.lanes import LaneKey

HELD = "held"
"""The destination is unknown (no settings yet), paused or disabled by its owner."""
BACKOFF = "backoff"
"""The destination is failing: its lane retries a batch later; nothing new is read."""
LANE_FULL = "lane_full"
"""The lane already has enough sealed batches waiting."""
MEMORY = "memory"
"""The worker holds as many records as it may (sinks.backpressure)."""
SEEK = "seek"
"""The consumer refused to move to ``next_offset``; retried every step."""

PAUSE_REASONS = (HELD, BACKOFF, LANE_FULL, MEMORY, SEEK)
DROPPING = frozenset({HELD, BACKOFF, SEEK})
"""Reasons whose records must not be delivered now: records still polled are dropped (and
read again on resume). Records polled just as a lane filled up or memory ran out are kept:
they are in memory already, and the next polls bring no more."""


@dataclass(slots=True)
class PartitionState:
    tp: TopicPartition
    next_offset: int
    """The next offset to take into a batch; reading resumes here."""
    lane_key: LaneKey | None = None
    open: Batch | None = None
    """The batch being filled (records only)."""
    open_held: int = 0
    """The memory estimate of the open batch."""
    pauses: set[str] = field(default_factory=set)
    generation: int = 0
    """Bumped on every rewind: outcomes of batches sealed before no longer count."""
    replay_id: str | None = None
    replay_until: int = 0
    """Records below this offset are delivered again for ``replay_id``."""
    check_gap: bool = True
    """The next record is compared with ``next_offset``: records missing in between may have
    been removed by retention before delivery."""
    needs_seek: bool = False
    """The consumer's position is past ``next_offset`` (records were dropped while paused, or
    given back): seek before reading again."""

    def replay_for(self, offset: int) -> str | None:
        """The replay the record at ``offset`` is delivered again for, if any."""
        if self.replay_id is not None and offset < self.replay_until:
            return self.replay_id
        return None

    def add_pause(self, reason: str) -> bool:
        """True if the partition was reading and must be paused now."""
        was_reading = not self.pauses
        self.pauses.add(reason)
        return was_reading

    def remove_pause(self, reason: str) -> bool:
        """True if that was the last reason and the partition must be resumed now."""
        if reason not in self.pauses:
            return False
        self.pauses.discard(reason)
        return not self.pauses

    def take_open(self) -> tuple[Batch | None, int]:
        """The open batch and its memory estimate, removed."""
        batch, held = self.open, self.open_held
        self.open, self.open_held = None, 0
        return batch, held
