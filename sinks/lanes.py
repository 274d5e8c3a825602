"""Delivery lanes: one per destination (of one account), each with its own queue of sealed
batches, its own in-flight limit and its own retry timer.

A lane is bookkeeping only, owned by the worker's poll loop; the attempts it hands out run on
delivery threads (:mod:`sinks.delivery_threads`), which reach the lane only through
:meth:`Lane.sink_for`. A batch that failed stays in its lane and is retried as it is, after
``retry_at``; while a lane waits for that moment it holds no thread. While retries are
pending or under way, a lane sends nothing new.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from auditstream.config.destinations import Destination
from auditstream.pipeline.log import TopicPartition
from auditstream.sinks.base import Sink
from auditstream.sinks.batch import Batch

LaneKey = tuple[str, str]
"""(account id, destination id): a destination id reused by another account is another lane."""

SinkFactory = Callable[[Destination], Sink]


@dataclass(eq=False, slots=True)
class Delivery:
    """A sealed batch (records only: each attempt decodes it) and what its attempts need."""

    batch: Batch
    redact: tuple[str, ...]
    """The account's redaction when the batch was sealed: every attempt renders the same."""
    held_bytes: int
    generation: int
    """The partition's generation when sealed: a rewind (replay, revocation) starts a new one
    and the older batches' outcomes no longer move its offsets."""
    attempts: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.batch.topic, self.batch.partition)


class Lane:
    """The delivery lane of one destination. Not thread-safe except :meth:`sink_for` and
    :meth:`close_sink`."""

    def __init__(self, key: LaneKey, destination: Destination, in_flight_limit: int) -> None:
        self.key = key
        self.destination = destination
        self.in_flight_limit = max(1, in_flight_limit)
        self.queue: deque[Delivery] = deque()
        self.retries: list[Delivery] = []
        self.in_flight: list[Delivery] = []
        self.retry_at: float | None = None
        """Monotonic time before which the lane sends nothing (a failure's backoff)."""
        self.partitions: set[TopicPartition] = set()
        self.held = False
        """Paused or disabled by its owner: sends nothing."""
        self._sink: Sink | None = None
        self._sink_destination: Destination | None = None
        self._sink_lock = threading.Lock()

    @property
    def account_id(self) -> str:
        return self.key[0]

    @property
    def destination_id(self) -> str:
        return self.key[1]

    # what to send ----------------------------------------------------------------------------

    def take(
        self, now: float, blocked: Callable[[TopicPartition], bool] = lambda _tp: False
    ) -> Delivery | None:
        """The next batch to attempt now, moved in flight; None if the lane is held, full,
        waiting for its retry time, or has nothing to send. Batches of a ``blocked`` partition
        wait (and so does everything after them in that partition)."""
        if self.held or len(self.in_flight) >= self.in_flight_limit:
            return None
        if self.retry_at is not None and now < self.retry_at:
            return None
        if self.retries:
            chosen = self._first_unblocked(self.retries, blocked)
            if chosen is not None:
                self.retries.remove(chosen)
        elif any(d.attempts > 1 for d in self.in_flight):
            chosen = None  # a retry is under way: nothing new until it is stored
        else:
            chosen = self._first_unblocked(self.queue, blocked)
            if chosen is not None:
                self.queue.remove(chosen)
        if chosen is not None:
            chosen.attempts += 1
            self.in_flight.append(chosen)
        return chosen

    @staticmethod
    def _first_unblocked(
        candidates: list[Delivery] | deque[Delivery], blocked: Callable[[TopicPartition], bool]
    ) -> Delivery | None:
        passed: set[TopicPartition] = set()
        for d in candidates:
            tp = d.tp
            if tp in passed:
                continue
            if blocked(tp):
                passed.add(tp)
                continue
            return d
        return None

    # outcomes ------------------------------------------------------------------------------

    def succeeded(self, delivery: Delivery) -> None:
        self._land(delivery)
        if not self.retries:
            self.retry_at = None

    def failed(self, delivery: Delivery, retry_at: float) -> None:
        """``delivery`` failed: it is retried as it is, not before ``retry_at``."""
        self._land(delivery)
        self.retries.append(delivery)
        self.retries.sort(key=lambda d: (d.batch.partition, d.batch.first_offset))
        self.retry_at = retry_at

    def discard(self, delivery: Delivery) -> None:
        """An attempt whose outcome no longer matters (its partition was rewound)."""
        self._land(delivery)

    def retry_now(self) -> None:
        """Drop the backoff (the settings changed: the next attempt may well succeed)."""
        self.retry_at = None

    def _land(self, delivery: Delivery) -> None:
        if delivery in self.in_flight:
            self.in_flight.remove(delivery)

    # giving batches back -------------------------------------------------------------------

    def release_unsent(self) -> list[Delivery]:
        """Take back every batch never attempted (their records will be read again)."""
        released = list(self.queue)
        self.queue.clear()
        return released

    def drop_partition(self, tp: TopicPartition) -> list[Delivery]:
        """Take back every batch of ``tp`` not in flight (queued or waiting for a retry)."""
        dropped = [d for d in self.queue if d.tp == tp] + [d for d in self.retries if d.tp == tp]
        self.queue = deque(d for d in self.queue if d.tp != tp)
        self.retries = [d for d in self.retries if d.tp != tp]
        if not self.retries:
            self.retry_at = None
        return dropped

    # what it holds -------------------------------------------------------------------------

    def held_bytes(self) -> int:
        """The memory estimate of every batch the lane holds."""
        groups = (self.queue, self.retries, self.in_flight)
        return sum(d.held_bytes for group in groups for d in group)

    def has_work(self) -> bool:
        return bool(self.queue or self.retries)

    def idle(self) -> bool:
        """Nothing queued, waiting or in flight."""
        return not (self.queue or self.retries or self.in_flight)

    # the sink (delivery threads) -------------------------------------------------------------

    def sink_for(self, destination: Destination, factory: SinkFactory) -> Sink:
        """The lane's sink for ``destination``'s settings, built on first use and rebuilt when
        they changed. Thread-safe. Raises what ``factory`` raises (``ConfigError``,
        ``ValueError`` for settings no sink can work with)."""
        with self._sink_lock:
            if self._sink is not None and self._sink_destination == destination:
                return self._sink
            if self._sink is not None:
                self._sink.close()
                self._sink = None
            self._sink = factory(destination)
            self._sink_destination = destination
            return self._sink

    def close_sink(self) -> None:
        """Close the sink (when no attempt is in flight). Thread-safe; does not raise."""
        with self._sink_lock:
            if self._sink is not None:
                self._sink.close()
                self._sink = None
                self._sink_destination = None
