"""Whether a process is alive and ready, for the ``/healthz`` and ``/readyz`` endpoints.

A process's loop reports to a :class:`Readiness`: once its log is open (``connected``), after
each poll of its main consumer (``polled``, with the partitions assigned then) and when it
makes progress (``progressed``). A watchdog's progress (:class:`pipeline.watchdog.Watchdog`)
can stand in for ``progressed``. The process is ready while it is connected, not stopping,
and both its last poll and its last progress are at most ``stale_after`` seconds old.

A process with no partitions assigned (more replicas than partitions) is ready unless
``require_assignment``: a replica waiting for partitions is healthy, and calling it unready
would stall a rolling update.

The loop thread writes, the HTTP thread reads: every field is replaced whole, never changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Any

from auditstream.pipeline.log import (
    Consumer,
    Log,
    OutgoingRecord,
    Record,
    TopicPartition,
    TransactionalProducer,
)

DEFAULT_STALE_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    ready: bool
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "reasons": list(self.reasons), **self.details}


class Readiness:
    """What the loop reports; :meth:`verdict` says whether the process is ready. ``clock`` is
    monotonic seconds (a fake one in tests); ``progress_idle`` (seconds since the last
    progress, e.g. from a watchdog) replaces :meth:`progressed` when given; ``stopping`` says
    whether a stop was requested (the process drains and is no longer ready). Without a
    ``loop`` (a server process), it is ready once connected and until stopping."""

    def __init__(
        self,
        stale_after: float = DEFAULT_STALE_AFTER_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        progress_idle: Callable[[], float] | None = None,
        stopping: Callable[[], bool] | None = None,
        require_assignment: bool = False,
        loop: bool = True,
    ) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        self.stale_after = stale_after
        self._clock = clock
        self._progress_idle = progress_idle
        self._stopping = stopping
        self._require_assignment = require_assignment
        self._loop = loop
        self._connected = False
        self._last_poll: float | None = None
        self._last_progress: float | None = None
        self._assigned: int | None = None

    def now(self) -> float:
        return self._clock()

    def connected(self) -> None:
        self._connected = True

    def follow_progress(self, idle_seconds: Callable[[], float]) -> None:
        """Take the seconds since the last progress from ``idle_seconds`` (a watchdog)."""
        self._progress_idle = idle_seconds

    def follow_stop(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping

    def polled(self, assigned: int | None = None) -> None:
        """A poll of the main consumer returned; ``assigned`` partitions were assigned then."""
        self._last_poll = self._clock()
        if assigned is not None:
            self._assigned = assigned

    def progressed(self) -> None:
        self._last_progress = self._clock()

    def _idle(self, at: float | None) -> float | None:
        return None if at is None else self._clock() - at

    def verdict(self) -> Verdict:
        poll_idle = self._idle(self._last_poll)
        if self._progress_idle is not None:
            progress_idle: float | None = self._progress_idle()
        else:
            progress_idle = self._idle(self._last_progress)
        reasons: list[str] = []
        if not self._connected:
            reasons.append("not connected to the log yet")
        if self._stopping is not None and self._stopping():
            reasons.append("stopping")
        if not self._loop:
            pass
        elif poll_idle is None:
            reasons.append("not polled yet")
        elif poll_idle > self.stale_after:
            reasons.append(f"last poll {poll_idle:.0f} s ago (limit {self.stale_after:g} s)")
        if not self._loop:
            pass
        elif progress_idle is None:
            reasons.append("no progress yet")
        elif progress_idle > self.stale_after:
            reasons.append(
                f"last progress {progress_idle:.0f} s ago (limit {self.stale_after:g} s)"
            )
        if self._require_assignment and not self._assigned:
            reasons.append("no partitions assigned")
        details: dict[str, Any] = {
            "connected": self._connected,
            "assigned_partitions": self._assigned,
            "seconds_since_poll": None if poll_idle is None else round(poll_idle, 1),
            "seconds_since_progress": None if progress_idle is None else round(progress_idle, 1),
        }
        return Verdict(not reasons, tuple(reasons), details)


class ObservedConsumer:
    """A consumer whose polls are reported to a :class:`Readiness` (in the polling thread):
    each poll with the partitions assigned after it, and records read as progress."""

    ASSIGNMENT_EVERY_S = 1.0
    """How often the assignment is counted (a loop may poll thousands of times a second)."""

    def __init__(self, inner: Consumer, readiness: Readiness, *, poll_is_progress: bool) -> None:
        self._inner = inner
        self._readiness = readiness
        self._poll_is_progress = poll_is_progress
        self._counted_at: float | None = None

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        records = self._inner.poll(max_records, timeout)
        now = self._readiness.now()
        if self._counted_at is None or now - self._counted_at >= self.ASSIGNMENT_EVERY_S:
            self._counted_at = now
            self._readiness.polled(len(self._inner.assignment()))
        else:
            self._readiness.polled()
        if records or self._poll_is_progress:
            self._readiness.progressed()
        return records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _unwrapped(consumer: Consumer) -> Consumer:
    return consumer._inner if isinstance(consumer, ObservedConsumer) else consumer


class _UnwrappingProducer:
    """A transactional producer handed the log's own consumer: a transaction commits the
    consumer's offsets with its group metadata, which only the log's consumer has."""

    def __init__(self, inner: TransactionalProducer) -> None:
        self._inner = inner

    def produce_and_commit(
        self,
        records: Sequence[OutgoingRecord],
        consumer: Consumer,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        self._inner.produce_and_commit(records, _unwrapped(consumer), offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ObservedLog:
    """A log whose consumers of ``group`` report their polls to ``readiness`` (see
    :class:`ObservedConsumer`); everything else is the log's own. ``poll_is_progress``: a
    poll that returns counts as progress (a loop that never waits on anything else)."""

    def __init__(
        self, inner: Log, readiness: Readiness, group: str, *, poll_is_progress: bool
    ) -> None:
        self._inner = inner
        self._readiness = readiness
        self._group = group
        self._poll_is_progress = poll_is_progress

    def consumer(self, group: str, topics: Sequence[str] | Pattern[str]) -> Consumer:
        consumer = self._inner.consumer(group, topics)
        if group != self._group:
            return consumer
        observed = ObservedConsumer(
            consumer, self._readiness, poll_is_progress=self._poll_is_progress
        )
        return observed

    def transactional_producer(self, transactional_id: str) -> TransactionalProducer:
        producer = _UnwrappingProducer(self._inner.transactional_producer(transactional_id))
        return producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
