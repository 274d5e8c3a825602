"""Rate limits of the activity API (pure, with an injected clock): a token bucket per API
token for reads, and a cap on the exports of one account running at once.

A bucket holds at most ``burst`` requests and refills at ``rate`` a second; a request takes
one. A full bucket is the same as no bucket, so full ones are dropped when the table grows:
memory follows the tokens active in the last ``burst / rate`` seconds, not every token ever
seen.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

_EPSILON = 1e-9
_PRUNE_AT = 10_000
"""Buckets kept before full ones are dropped."""


@dataclass(slots=True)
class _Bucket:
    level: float
    updated: float


class TokenBuckets:
    """One bucket per key. Thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one request from ``key``'s bucket: 0.0 if it was there, otherwise the seconds
        until one will be (nothing taken)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _PRUNE_AT:
                    self._prune(now)
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            # A clock that steps back refills nothing (and never drains a bucket).
            elapsed = max(0.0, now - bucket.updated)
            bucket.level = min(float(self.burst), bucket.level + elapsed * self.rate)
            bucket.updated = max(bucket.updated, now)
            if bucket.level >= 1.0 - _EPSILON:  # a refill of exactly one may round below it
                bucket.level = max(0.0, bucket.level - 1.0)
                return 0.0
            return (1.0 - bucket.level) / self.rate

    def _prune(self, now: float) -> None:
        full = [
            key
            for key, b in self._buckets.items()
            if b.level + max(0.0, now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class ConcurrencyCap:
    """At most ``limit`` holders per key at once. Thread-safe."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a concurrency limit must be at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> bool:
        """Hold one place for ``key`` if one is free (then :meth:`release` it exactly once)."""
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.limit:
                return False
            self._held[key] = held + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            held = self._held.get(key, 0) - 1
            if held > 0:
                self._held[key] = held
            else:
                self._held.pop(key, None)

    def held(self, key: str) -> int:
        with self._lock:
            return self._held.get(key, 0)


def retry_after(seconds: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
