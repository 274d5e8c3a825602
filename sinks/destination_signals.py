"""Per-destination operator signals: consumer lag and the age of the oldest undelivered event,
as gauges labelled ``destination``.

Reading end offsets (and, when the oldest undelivered record is not in memory, its timestamp)
is a call to the log, so destinations are sampled a few per step, each about every
``interval`` seconds, and a slow log never holds the poll loop for long.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Log, TopicPartition
from auditstream.sinks import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Undelivered:
    """Where delivery of a partition stands: the first offset not stored yet, and that
    record's timestamp (ms) when the worker holds it."""

    offset: int
    timestamp_ms: int | None


class DestinationSignals:
    def __init__(
        self,
        log_backend: Log,
        *,
        interval: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        per_step: int = 20,
    ) -> None:
        self._log = log_backend
        self._interval = interval
        self._clock = clock
        self._wall = wall_clock
        self._per_step = per_step
        self._sampled_at: dict[str, float] = {}

    def sample(
        self,
        destinations: Iterable[tuple[str, Iterable[TopicPartition]]],
        undelivered: Callable[[TopicPartition], Undelivered],
    ) -> None:
        """Refresh the gauges of up to ``per_step`` destinations due for it (the least
        recently sampled first). ``destinations``: (destination id, its partitions read)."""
        now = self._clock()
        due = [
            (dest_id, list(tps))
            for dest_id, tps in destinations
            if now - self._sampled_at.get(dest_id, -self._interval) >= self._interval
        ]
        due.sort(key=lambda d: self._sampled_at.get(d[0], -self._interval))
        for dest_id, tps in due[: self._per_step]:
            self._sampled_at[dest_id] = now
            try:
                lag, oldest_ms = self._measure(tps, undelivered)
            except LogError as exc:
                log.debug("lag of %s not sampled: %s", dest_id, exc)
                continue
            age = 0.0 if oldest_ms is None else max(0.0, self._wall() - oldest_ms / 1000.0)
            metrics.DESTINATION_LAG.labels(destination=dest_id).set(lag)
            metrics.DESTINATION_OLDEST_AGE.labels(destination=dest_id).set(round(age, 3))

    def _measure(
        self, tps: list[TopicPartition], undelivered: Callable[[TopicPartition], Undelivered]
    ) -> tuple[int, int | None]:
        lag = 0
        oldest: int | None = None
        ends: dict[TopicPartition, int] = {}
        for topic in {tp.topic for tp in tps}:
            ends.update(self._log.end_offsets(topic))
        for tp in tps:
            where = undelivered(tp)
            behind = max(0, ends.get(tp, where.offset) - where.offset)
            lag += behind
            stamp = where.timestamp_ms
            if stamp is None and behind > 0:
                stamp = self._log.timestamp_at(tp, where.offset)
            if stamp is not None:
                oldest = stamp if oldest is None else min(oldest, stamp)
        return lag, oldest

    def forget(self, destination_id: str) -> None:
        """Drop the destination's series (deleted, or no longer read by this worker)."""
        self._sampled_at.pop(destination_id, None)
        for gauge in (metrics.DESTINATION_LAG, metrics.DESTINATION_OLDEST_AGE):
            with contextlib.suppress(KeyError):
                gauge.remove(destination_id)
