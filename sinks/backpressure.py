"""Bounded memory (pure): how many records the next poll may bring, and which lanes stop
reading when the worker holds too much.

The worker holds records from the poll until their batch is stored: open batches, sealed ones
waiting in their lane, attempts in flight, failed batches waiting to be retried. Every held
record counts at its decoded size (:func:`sinks.batch.decoded_size`). One cap bounds the sum:

- a poll asks for no more records than fit under the cap (at least one, so the consumer keeps
  being polled), at the recent average size of a record;
- when the sum reaches the cap, the fullest lanes stop reading (their partitions are paused)
  until the lanes still reading hold at most half of it; the others keep flowing;
- once the sum is back under half the cap, every lane paused for memory reads again.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Set
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class MemoryPlan(Generic[K]):
    pause: list[K]
    """Lanes to stop reading, fullest first."""
    resume: list[K]
    """Lanes paused for memory that may read again."""


def plan(held: Mapping[K, int], paused: Set[K], cap: int) -> MemoryPlan[K]:
    """What to pause or resume given the bytes ``held`` per lane, the lanes already ``paused``
    for memory and the ``cap``."""
    total = sum(held.values())
    if total >= cap:
        reading = sorted(
            (k for k, n in held.items() if k not in paused and n > 0),
            key=lambda k: held[k],
            reverse=True,
        )
        still = sum(held[k] for k in reading)
        pause: list[K] = []
        for k in reading:
            if still <= total // 2:
                break
            pause.append(k)
            still -= held[k]
        return MemoryPlan(pause, [])
    if paused and total <= cap // 2:
        return MemoryPlan([], sorted(paused, key=lambda k: held.get(k, 0)))
    return MemoryPlan([], [])


def poll_budget(held_total: int, cap: int, record_estimate: float, max_records: int) -> int:
    """How many records the next poll may bring: what fits under ``cap`` at
    ``record_estimate`` bytes each, between 1 and ``max_records``."""
    room = cap - held_total
    if room <= 0:
        return 1
    return max(1, min(max_records, int(room // max(1.0, record_estimate))))
