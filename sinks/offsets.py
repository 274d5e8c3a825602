"""Which offsets a sink worker may commit: per partition, up to the end of the longest run of
stored batches from the oldest one handed to delivery (pure bookkeeping).

Batches of a partition are registered in offset order as they are sealed; they may be stored
in any order (a lane with several attempts in flight, a retry). A partition's offset moves
only over batches that are stored and have no unstored batch before them, so a crash or a
rebalance never skips an undelivered record.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from auditstream.pipeline.log import TopicPartition


@dataclass(slots=True)
class _Span:
    first: int
    last: int
    stored: bool = False


@dataclass(slots=True)
class PartitionOffsets:
    """The batches of one partition not yet committed, oldest first."""

    spans: deque[_Span] = field(default_factory=deque)
    ready: int | None = None
    """The offset to commit next (the run of stored batches grew), until a commit takes it."""

    def add(self, first: int, last: int) -> None:
        """Register a batch of offsets ``first``..``last`` (after every batch added before).
        Raises ``ValueError`` if it overlaps or precedes one."""
        if self.spans and first <= self.spans[-1].last:
            raise ValueError(f"batch {first}..{last} does not follow {self.spans[-1].last}")
        self.spans.append(_Span(first, last))

    def stored(self, first: int) -> None:
        """The batch starting at ``first`` is stored (unknown batches are ignored: a batch
        forgotten by a rewind or replay)."""
        for span in self.spans:
            if span.first == first:
                span.stored = True
                break
        while self.spans and self.spans[0].stored:
            self.ready = self.spans.popleft().last + 1

    def forget_from(self, offset: int) -> None:
        """Forget the batches starting at or after ``offset`` (never delivered: they will be
        read again)."""
        while self.spans and self.spans[-1].first >= offset:
            self.spans.pop()


class OffsetBook:
    """:class:`PartitionOffsets` of every partition the worker delivers, and what to commit."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, PartitionOffsets] = {}

    def add(self, tp: TopicPartition, first: int, last: int) -> None:
        self._partitions.setdefault(tp, PartitionOffsets()).add(first, last)

    def stored(self, tp: TopicPartition, first: int) -> None:
        found = self._partitions.get(tp)
        if found is not None:
            found.stored(first)

    def forget_from(self, tp: TopicPartition, offset: int) -> None:
        found = self._partitions.get(tp)
        if found is not None:
            found.forget_from(offset)

    def drop(self, tp: TopicPartition) -> None:
        """Forget ``tp`` entirely (revoked, rewound for a replay): nothing of it is committed."""
        self._partitions.pop(tp, None)

    def due(self) -> dict[TopicPartition, int]:
        """The offsets to commit now: every partition whose stored run grew since its last
        successful commit."""
        return {tp: p.ready for tp, p in self._partitions.items() if p.ready is not None}

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """``offsets`` (from :meth:`due`) were committed."""
        for tp, offset in offsets.items():
            found = self._partitions.get(tp)
            if found is not None and found.ready == offset:
                found.ready = None

    def uncommitted(self, tp: TopicPartition) -> bool:
        """Whether ``tp`` has a stored batch whose offset is not committed yet."""
        found = self._partitions.get(tp)
        return found is not None and found.ready is not None

    def first_pending(self, tp: TopicPartition) -> int | None:
        """The first offset of the oldest batch of ``tp`` not stored yet, if any."""
        found = self._partitions.get(tp)
        if found is None or not found.spans:
            return None
        return found.spans[0].first

    def pending(self, tp: TopicPartition) -> int:
        """Batches of ``tp`` handed to delivery and not committable yet."""
        found = self._partitions.get(tp)
        return 0 if found is None else len(found.spans)
