"""Batch boundaries a worker has sent and not committed, so records read again are batched
again exactly as they were sent (pure bookkeeping, see ADR 018).

A batch's delivery identity comes from its boundaries: a webhook's ``Idempotency-Key`` and
``webhook-id`` are ``<destination>:<partition>:<first>-<last>``, an object store's key is
derived from the first offset. Once the first attempt at a batch begins, its boundaries are
kept here, per partition, until the partition's committed offset passes them. When the same
offsets are read again (a failed commit and a revocation, a reassignment, a rewind), the
batcher cuts them to those boundaries instead of by count, bytes or age, so the receiver sees
the request it already has, under the key it already has.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable

from auditstream.pipeline.log import TopicPartition

Span = tuple[int, int]
"""(first offset, last offset) of a sent batch, both included."""


class BatchManifests:
    """The sent, uncommitted batch boundaries of every partition, oldest first."""

    def __init__(self) -> None:
        self._spans: dict[TopicPartition, list[Span]] = {}

    def sent(self, tp: TopicPartition, first: int, last: int) -> None:
        """The first attempt at batch ``first``..``last`` of ``tp`` begins. Spans it overlaps
        (boundaries from before a rewind that cut the records otherwise) are replaced."""
        spans = [s for s in self._spans.get(tp, []) if s[1] < first or s[0] > last]
        bisect.insort(spans, (first, last))
        self._spans[tp] = spans

    def committed(self, tp: TopicPartition, offset: int) -> None:
        """``tp``'s committed offset is ``offset``: spans below it are delivered for good."""
        spans = self._spans.get(tp)
        if spans is None:
            return
        kept = [s for s in spans if s[1] >= offset]
        if kept:
            self._spans[tp] = kept
        else:
            del self._spans[tp]

    def covering(self, tp: TopicPartition, offset: int) -> Span | None:
        """The sent batch whose boundaries enclose ``offset``, if any."""
        spans = self._spans.get(tp)
        if not spans:
            return None
        i = bisect.bisect_right(spans, (offset, sys.maxsize)) - 1
        if i >= 0 and spans[i][0] <= offset <= spans[i][1]:
            return spans[i]
        return None

    def starting_at(self, tp: TopicPartition, first: int) -> Span | None:
        """The sent batch that begins at ``first``, if any."""
        found = self.covering(tp, first)
        return found if found is not None and found[0] == first else None

    def drop(self, tp: TopicPartition) -> None:
        self._spans.pop(tp, None)

    def retain(self, keep: Callable[[TopicPartition], bool]) -> None:
        """Forget the partitions ``keep`` says no (their destination was deleted)."""
        for tp in [tp for tp in self._spans if not keep(tp)]:
            del self._spans[tp]

    def spans(self, tp: TopicPartition) -> list[Span]:
        return list(self._spans.get(tp, []))
