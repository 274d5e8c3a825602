"""Per-destination delivery state as the worker sees it (pure bookkeeping)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    ACTIVE = "active"
    FAILING = "failing"  # retries ran out on a transient error; paused, retried with backoff
    ERROR = "error"  # the destination refused (no retry can fix it); paused until fixed
    WAITING = "waiting"  # no settings for this destination topic (yet); paused
    PAUSED = "paused"  # paused by its owner; events wait in the topic
    DISABLED = "disabled"  # switched off by its owner; events wait in the topic


@dataclass(slots=True)
class DestinationHealth:
    state: State = State.ACTIVE
    consecutive_failures: int = 0
    last_error: str | None = None
    last_cause: str | None = None
    last_success_at: float | None = None
    delivered_events: int = 0
    written_batches: int = 0
    applied_replay_id: str | None = None

    def succeeded(self, now: float, events: int) -> None:
        self.state = State.ACTIVE
        self.consecutive_failures = 0
        self.last_success_at = now
        self.delivered_events += events
        self.written_batches += 1

    def failed(self, *, permanent: bool, message: str, cause: str) -> None:
        self.state = State.ERROR if permanent else State.FAILING
        self.consecutive_failures += 1
        self.last_error = message
        self.last_cause = cause


def pause_seconds(consecutive_failures: int, *, base: float, cap: float) -> float:
    """How long a failing destination stays paused before the next try: doubling from
    ``base`` up to ``cap``, with jitter in [50%, 100%] so paused destinations do not retry in
    lockstep."""
    n = max(1, consecutive_failures)
    delay = min(cap, base * float(2 ** (n - 1)))
    return float(delay * random.uniform(0.5, 1.0))
