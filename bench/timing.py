"""Timing a consuming loop in its steady state, bounding a stage's run time, and keeping the
garbage collector's work out of the timed part."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field


@dataclass
class SteadyClock:
    """Steady-state timing of a consuming loop.

    The clock starts when the first non-empty batch has been handled: that batch absorbs the
    consumer group join, the first fetch and connection set-up, and is not counted. The rate is
    (N - records of the first batch) / (end - start). ``startup_s`` is the time from the loop's
    start to the end of that first batch.
    """

    began: float = field(default_factory=time.perf_counter)
    start: float | None = None
    first_batch: int = 0
    end: float = 0.0

    def batch(self, records: int, finished_at: float) -> bool:
        """Record a handled batch; True if it is counted (the clock was already running)."""
        if records <= 0:
            return False
        if self.start is None:
            self.start = finished_at
            self.first_batch = records
            return False
        return True

    def stop(self) -> None:
        self.end = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.end - (self.start if self.start is not None else self.began)

    @property
    def startup_s(self) -> float:
        return (self.start if self.start is not None else self.end) - self.began


class Deadline:
    """A stage that has not finished after ``seconds`` fails instead of hanging the run."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        self.at = time.perf_counter() + seconds

    def check(self, done: int, total: int) -> None:
        if time.perf_counter() > self.at:
            raise RuntimeError(f"{self.what}: only {done:,} of {total:,} after {self.seconds:.0f}s")


def settle(freeze: bool = False) -> None:
    """Collect the garbage of the previous step (the clients of a finished stage hold reference
    cycles; their threads should not compete with the next stage) and, with ``freeze``, move
    every object alive now out of the cyclic collector's sight, so collections during the timed
    part scan what the measured process would hold rather than what the bench holds."""
    gc.collect()
    if freeze:
        gc.freeze()
