"""The simulator's clocks: when each event is recorded and when it occurred.

:class:`Clock` is synthetic: it starts at a given time and advances by random gaps of about
20 events a second, however fast events are drawn, so a seed and a start reproduce every
timestamp. :class:`WallClock` records events at the real time they are drawn, for traffic
produced at a rate. Both draw the same random numbers, so a seed gives the same events under
either clock, timestamps apart.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "EventClock", "WallClock"]

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


class EventClock(Protocol):
    """What the simulator asks of a clock."""

    def tick(self, rng: random.Random) -> None:
        """Move on to the next activity."""

    def tick_switch_login(self, rng: random.Random) -> None:
        """Move on to the login that follows a team switch."""

    def timestamps(self, rng: random.Random) -> tuple[datetime, datetime]:
        """``(occurred_at, recorded_at)`` of an event recorded now."""
        ...


def _recording_delay_us(rng: random.Random, late_fraction: float) -> int:
    """How long before being recorded an event occurred: a short delay, or for
    ``late_fraction`` of the events minutes to hours."""
    if late_fraction and rng.random() < late_fraction:
        late_s = math.exp(rng.uniform(math.log(LATE_MIN_S), math.log(LATE_MAX_S)))
        return int(late_s * 1_000_000)
    return rng.randint(*RECORDING_DELAY_US)


def _pair(recorded_us: int, delay_us: int) -> tuple[datetime, datetime]:
    return (
        _EPOCH + timedelta(microseconds=recorded_us - delay_us),
        _EPOCH + timedelta(microseconds=recorded_us),
    )


def _wall_us() -> int:
    return time.time_ns() // 1000


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
        return _pair(self._now_us, _recording_delay_us(rng, self._late_fraction))


class WallClock:
    """Events are recorded at the real time they are drawn: ``occurred_at <= recorded_at <=
    now``, with a short delay between the two, or minutes to hours for ``late_fraction`` of
    the events. Recorded time never goes backwards: should the system clock step back, it
    stays where it was until the system clock catches up. ``now_us`` (unix microseconds) is
    the time source."""

    def __init__(self, late_fraction: float, now_us: Callable[[], int] = _wall_us) -> None:
        self._late_fraction = late_fraction
        self._now_us = now_us
        self._last_us = 0

    # The synthetic clock's draws, made and dropped: the events that follow are then the same
    # under both clocks.
    def tick(self, rng: random.Random) -> None:
        """Draw the synthetic clock's gap to the next activity (time itself comes from the
        system clock)."""
        rng.expovariate(1.0 / MEAN_INTERVAL_US)

    def tick_switch_login(self, rng: random.Random) -> None:
        """Draw the synthetic clock's gap to the login after a team switch."""
        rng.randint(*SWITCH_LOGIN_DELAY_US)

    def timestamps(self, rng: random.Random) -> tuple[datetime, datetime]:
        """``(occurred_at, recorded_at)`` of an event recorded now."""
        self._last_us = max(self._last_us, self._now_us())
        return _pair(self._last_us, _recording_delay_us(rng, self._late_fraction))
