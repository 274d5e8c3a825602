"""The simulator's clocks: synthetic (reproducible) and wall (real time, for a rate)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.producers.simulator.clock import WallClock

ACCOUNTS = ("acct-alpha", "acct-beta", "acct-gamma")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@pytest.mark.parametrize(
    ("readings", "recorded"),
    [
        ([1_000_000, 2_000_000, 3_000_000], [1_000_000, 2_000_000, 3_000_000]),
        ([5_000_000, 5_000_000], [5_000_000, 5_000_000]),
        # The system clock steps back: recorded time waits for it.
        (
            [9_000_000, 4_000_000, 8_000_000, 9_500_000],
            [9_000_000, 9_000_000, 9_000_000, 9_500_000],
        ),
    ],
)
def test_wall_clock_records_at_the_reading_never_backwards(
    readings: list[int], recorded: list[int]
) -> None:
    it = iter(readings)
    clock = WallClock(0.0, now_us=lambda: next(it))
    rng = random.Random(1)
    stamps = [clock.timestamps(rng) for _ in readings]
    assert [r for _, r in stamps] == [at_us(us) for us in recorded]
    for occurred, recorded_at in stamps:
        assert timedelta(0) < recorded_at - occurred < timedelta(seconds=1)


def test_wall_clock_timestamps_lie_between_occurring_and_now() -> None:
    before = datetime.now(UTC)
    config = SimulatorConfig(accounts=ACCOUNTS, seed=5, clock="wall", late_fraction=0.2)
    events = list(Simulator(config).events(3_000))
    after = datetime.now(UTC)
    for e in events:
        assert e["occurred_at"] <= e["recorded_at"]
        assert before <= e["recorded_at"] <= after
    late = [e for e in events if e["recorded_at"] - e["occurred_at"] > timedelta(seconds=60)]
    assert late, "late events must still occur under the wall clock"


def without_times(events: list[Any]) -> list[Any]:
    return [{k: v for k, v in e.items() if k not in ("occurred_at", "recorded_at")} for e in events]


def test_a_seed_gives_the_same_events_under_either_clock() -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    synthetic = Simulator(SimulatorConfig(accounts=ACCOUNTS, seed=9, start=start))
    wall = Simulator(SimulatorConfig(accounts=ACCOUNTS, seed=9, clock="wall"))
    assert without_times(list(synthetic.events(2_000))) == without_times(list(wall.events(2_000)))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"clock": "wall", "start": datetime(2024, 5, 1, tzinfo=UTC)}, "synthetic clock only"),
        ({"clock": "sundial"}, "clock must be"),
    ],
)
def test_invalid_clock_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Simulator(SimulatorConfig(accounts=ACCOUNTS, **overrides))
