"""Per-destination operator signals: consumer lag and the age of the oldest undelivered event,
as gauges labelled ``destination``.

Lag needs each topic's end offset, and the age the timestamp of the oldest undelivered record
when the worker does not hold it: calls to the log, one or two round trips each on Kafka. They
run on a thread of their own, every ``interval`` seconds, from the latest snapshot of where
delivery stands that the poll loop hands over (:meth:`DestinationSignals.update`), so a slow
log never holds the poll loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
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


Snapshot = Mapping[str, Sequence[tuple[TopicPartition, Undelivered]]]
"""Destination id -> where delivery of each of its partitions stands."""


class DestinationSignals:
    def __init__(
        self, log_backend: Log, *, interval: float, wall_clock: Callable[[], float]
    ) -> None:
        self._log = log_backend
        self._interval = interval
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._snapshot: dict[str, Sequence[tuple[TopicPartition, Undelivered]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version = 0  # a sample of an older snapshot must not overwrite a newer one

    def update(self, snapshot: Snapshot) -> None:
        """The latest state of every destination this worker delivers (starts sampling)."""
        with self._lock:
            self._snapshot = dict(snapshot)
            self._version += 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="destination-signals", daemon=True
                )
                self._thread.start()

    def forget(self, destination_id: str) -> None:
        """Drop the destination's series (deleted, or no longer read by this worker)."""
        with self._lock:
            self._snapshot.pop(destination_id, None)
            _remove_series(destination_id)

    def close(self, timeout: float = 10.0) -> None:
        """Stop sampling and wait (at most ``timeout`` s) for a sample under way to end: its
        log calls are bounded, and a thread still asking a log that is being closed would
        outlive the worker."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("destination signals still sampling after %g s", timeout)

    def sample_once(self) -> None:
        """Measure every destination of the latest snapshot and set its gauges."""
        with self._lock:
            snapshot, version = dict(self._snapshot), self._version
        for dest_id, partitions in snapshot.items():
            if self._stop.is_set():
                return
            try:
                lag, oldest_ms = self._measure(partitions)
            except LogError as exc:
                log.debug("lag of %s not sampled: %s", dest_id, exc)
                continue
            age = 0.0 if oldest_ms is None else max(0.0, self._wall() - oldest_ms / 1000.0)
            with self._lock:
                if dest_id not in self._snapshot:
                    continue  # forgotten meanwhile: no series again
                if version != self._version:
                    return  # a newer snapshot came meanwhile: its sample sets the gauges
                metrics.DESTINATION_LAG.labels(destination=dest_id).set(lag)
                metrics.DESTINATION_OLDEST_AGE.labels(destination=dest_id).set(round(age, 3))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:  # never let the signals take the worker down
                log.exception("destination signals not sampled")
            self._stop.wait(self._interval)

    def _measure(
        self, partitions: Sequence[tuple[TopicPartition, Undelivered]]
    ) -> tuple[int, int | None]:
        lag = 0
        oldest: int | None = None
        ends: dict[TopicPartition, int] = {}
        for topic in {tp.topic for tp, _where in partitions}:
            ends.update(self._log.end_offsets(topic))
        for tp, where in partitions:
            behind = max(0, ends.get(tp, where.offset) - where.offset)
            lag += behind
            stamp = where.timestamp_ms
            if stamp is None and behind > 0:
                stamp = self._log.timestamp_at(tp, where.offset)
            if stamp is not None:
                oldest = stamp if oldest is None else min(oldest, stamp)
        return lag, oldest


def _remove_series(destination_id: str) -> None:
    for gauge in (metrics.DESTINATION_LAG, metrics.DESTINATION_OLDEST_AGE):
        with contextlib.suppress(KeyError):
            gauge.remove(destination_id)
