"""The simulated clock: when each event is recorded and when it occurred."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]

MEAN_INTERVAL_US = 50_000
"""Mean time between two recorded events over all accounts (20 events a second)."""
SWITCH_LOGIN_DELAY_US = (150_000, 1_500_000)
"""Bounds of the time between a team switch and the login into the team switched to."""
RECORDING_DELAY_US = (2_000, 900_000)
"""Bounds of the time between occurring and being recorded, for events recorded on time."""
LATE_MIN_S = 120.0
LATE_MAX_S = 6 * 3600.0
"""Bounds of the recording delay of late events (log-uniform between them)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    """Recorded time never goes backwards; occurred time is a short delay earlier, except for
    ``late_fraction`` of the events, recorded minutes to hours late."""

    def __init__(self, start: datetime, late_fraction: float) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now_us = (start - _EPOCH) // timedelta(microseconds=1)
        self._late_fraction = late_fraction

    def tick(self, rng: random.Random) -> None:
        """Advance to the next activity (exponential gaps: a Poisson process)."""
        self._now_us += int(rng.expovariate(1.0 / MEAN_INTERVAL_US))

    def tick_switch_login(self, rng: random.Random) -> None:
        """Advance to the login that follows a team switch."""
        self._now_us += rng.randint(*SWITCH_LOGIN_DELAY_US)

    def timestamps(self, rng: random.Random) -> tuple[datetime, datetime]:
        """``(occurred_at, recorded_at)`` of an event recorded now."""
        recorded = self._now_us
        if self._late_fraction and rng.random() < self._late_fraction:
            late_s = math.exp(rng.uniform(math.log(LATE_MIN_S), math.log(LATE_MAX_S)))
            delay = int(late_s * 1_000_000)
        else:
            delay = rng.randint(*RECORDING_DELAY_US)
        return (
            _EPOCH + timedelta(microseconds=recorded - delay),
            _EPOCH + timedelta(microseconds=recorded),
        )
