"""Per-destination delivery state as the worker sees it (pure bookkeeping).

The state machine::

    active ──transient failures past the quick retries──► failing ──suspend_after──► suspended
      ▲                                                      │                          │
      └────────────────── a retry succeeds ◄─────────────────┴──────────────────────────┘

A refusal that no retry fixes moves a destination to ``error`` (a rejected request: the owner
fixes the receiver or the settings), or straight to ``suspended`` when its cause says the
destination is gone or its credentials are revoked (:data:`SUSPEND_AT_ONCE`). ``error`` also
becomes ``suspended`` after ``suspend_after``. Every state but ``active`` keeps the events in the
destination's topic; a destination is retried in every failure state (suspended ones seldom) and
is ``active`` again as soon as a batch is stored. ``waiting``, ``paused`` and ``disabled`` are
held states: no settings yet, or the owner's choice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum


class State(StrEnum):
    ACTIVE = "active"
    FAILING = "failing"  # quick retries ran out on a transient error; retried with backoff
    SUSPENDED = "suspended"  # failing too long, or the destination is gone; retried seldom
    ERROR = "error"  # the destination refused (no retry can fix it); retried with backoff
    WAITING = "waiting"  # no settings for this destination topic (yet); paused
    PAUSED = "paused"  # paused by its owner; events wait in the topic
    DISABLED = "disabled"  # switched off by its owner; events wait in the topic


FAILURE_STATES = frozenset({State.FAILING, State.ERROR, State.SUSPENDED})
HELD_STATES = frozenset({State.WAITING, State.PAUSED, State.DISABLED})

SUSPEND_AT_ONCE = frozenset({"http_410", "bad_credentials", "access_denied", "bucket_missing"})
"""Causes that mean the destination no longer exists or no longer lets us in: the endpoint is
gone (410), the credentials are invalid or revoked, the bucket or container was deleted.
Retrying every few minutes would only add noise; the destination is suspended at once."""


@dataclass(slots=True)
class DestinationHealth:
    """One destination of one account, as the worker delivering it sees it. Times are epoch
    seconds."""

    state: State = State.ACTIVE
    consecutive_failures: int = 0
    last_error: str | None = None
    last_cause: str | None = None
    last_success_at: float | None = None
    delivered_events: int = 0
    written_batches: int = 0
    applied_replay_id: str | None = None
    account_id: str | None = None
    failing_since: float | None = None
    """When the current run of failures began (None while deliveries succeed)."""
    suspended_at: float | None = None
    next_attempt_at: float | None = None
    """When the next attempt is due while failing (None when not waiting to retry)."""
    expired_events: int = 0
    """Events the topic's retention removed before they were delivered (offsets on Kafka,
    where transaction markers take offsets too: an upper bound)."""
    replay_until: dict[str, int] = field(default_factory=dict)
    """Partition (as text) -> the offset the applied replay delivers again up to."""

    def succeeded(self, now: float, events: int) -> None:
        self.state = State.ACTIVE
        self.consecutive_failures = 0
        self.failing_since = None
        self.suspended_at = None
        self.next_attempt_at = None
        self.last_success_at = now
        self.delivered_events += events
        self.written_batches += 1

    def retrying(self, *, message: str, cause: str, now: float | None = None) -> None:
        """A transient failure within the quick retries: the state does not change."""
        self._count_failure(message, cause, now)

    def failed(
        self, *, permanent: bool, message: str, cause: str, now: float | None = None
    ) -> None:
        """A failure that makes the destination ``failing`` (transient), ``error`` (refused)
        or ``suspended`` (refused for a cause in :data:`SUSPEND_AT_ONCE`). A suspended
        destination stays suspended until a batch is stored."""
        self._count_failure(message, cause, now)
        if self.state is State.SUSPENDED:
            return
        if permanent and cause in SUSPEND_AT_ONCE:
            self.state = State.SUSPENDED
            self.suspended_at = now
        else:
            self.state = State.ERROR if permanent else State.FAILING

    def suspend_if_due(self, now: float, suspend_after: float) -> bool:
        """Suspend a destination that has been failing (or in error) for ``suspend_after``
        seconds. True if it was suspended now."""
        if self.state not in (State.FAILING, State.ERROR) or self.failing_since is None:
            return False
        if now - self.failing_since < suspend_after:
            return False
        self.state = State.SUSPENDED
        self.suspended_at = now
        return True

    def hold(self, state: State) -> None:
        """``waiting``, ``paused`` or ``disabled``: no delivery until the settings change."""
        self.state = state
        self.next_attempt_at = None

    def release(self) -> None:
        """Leave a held state: ``active``, or ``failing`` while a failure is unresolved (the
        next attempt decides)."""
        if self.state in HELD_STATES:
            self.state = State.FAILING if self.consecutive_failures else State.ACTIVE

    def _count_failure(self, message: str, cause: str, now: float | None) -> None:
        self.consecutive_failures += 1
        self.last_error = message
        self.last_cause = cause
        if self.failing_since is None:
            self.failing_since = now


def pause_seconds(consecutive_failures: int, *, base: float, cap: float) -> float:
    """How long a failing destination waits before the next try: doubling from ``base`` up
    to ``cap``, with jitter in [50%, 100%] so failing destinations do not retry in lockstep."""
    n = max(1, consecutive_failures)
    delay = min(cap, base * float(2 ** min(n - 1, 62)))
    return float(delay * random.uniform(0.5, 1.0))
