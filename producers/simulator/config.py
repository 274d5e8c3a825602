"""What the simulator is asked to simulate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["SimulatorConfig"]


@dataclass
class SimulatorConfig:
    """What to simulate."""

    accounts: Sequence[str]
    """Account ids that produce activity; earlier ones are not necessarily busier."""
    seed: int | None = None
    """Seed of the random sequence; None draws one from the operating system."""
    late_fraction: float = 0.01
    """Share of the events recorded minutes to hours after they occurred."""
    start: datetime | None = None
    """Where the synthetic clock starts (default: now, UTC; naive values are taken as UTC):
    every ``recorded_at`` is at or after it, an ``occurred_at`` may precede it."""
    clock: Literal["synthetic", "wall"] = "synthetic"
    """``synthetic``: timestamps advance about 20 events a second from ``start``, however fast
    events are drawn (reproducible with a seed and a start). ``wall``: each event is recorded
    at the real time it is drawn, for traffic produced at a rate."""
