"""Timing the sinks a worker builds without touching their code (each ``write``, and the
``_put`` inside it for object-store sinks, recorded as one :class:`Write`), and stepping the
worker until it has delivered a given number of events."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from auditstream.config.destinations import Destination
from auditstream.sinks.base import Batch, CheckResult, Sink, WriteResult
from auditstream.sinks.factory import build_sink
from auditstream.sinks.object_store import ObjectStoreSink
from auditstream.sinks.worker import SinkWorker
from bench.timing import Deadline, SteadyClock


@dataclass
class Write:
    finished_at: float
    """``time.perf_counter()`` when the write returned."""
    seconds: float
    put_seconds: float
    destination_id: str
    events: int
    bytes: int
    deliveries: int
    """Objects stored or requests answered by this write."""


class TimedSink:
    """Times each ``write`` of the sink it wraps and, for object-store sinks, the ``_put``
    inside it (patched on this instance only). The sink code runs unchanged."""

    def __init__(self, inner: Sink, destination_id: str, writes: list[Write]) -> None:
        self._inner = inner
        self._destination_id = destination_id
        self._writes = writes
        self._put_seconds = 0.0
        self.type = inner.type
        if isinstance(inner, ObjectStoreSink):
            put = inner._put

            def timed_put(
                key: str, data: bytes, *, content_type: str, content_encoding: str | None
            ) -> None:
                started = time.perf_counter()
                try:
                    put(key, data, content_type=content_type, content_encoding=content_encoding)
                finally:
                    self._put_seconds += time.perf_counter() - started

            inner._put = timed_put  # type: ignore[method-assign]

    def write(self, batch: Batch) -> WriteResult:
        self._put_seconds = 0.0
        started = time.perf_counter()
        written = self._inner.write(batch)
        finished = time.perf_counter()
        self._writes.append(
            Write(
                finished,
                finished - started,
                self._put_seconds,
                self._destination_id,
                len(batch.events),
                written.bytes_written,
                written.deliveries,
            )
        )
        return written

    def probe(self) -> CheckResult:
        return self._inner.probe()

    def is_retryable(self, exc: BaseException) -> bool:
        return self._inner.is_retryable(exc)

    def close(self) -> None:
        self._inner.close()


def timed_factory(local_root: Path, writes: list[Write]) -> Callable[[Destination], Sink]:
    """The ordinary sink factory (``build_sink``), each sink wrapped in a :class:`TimedSink`
    that appends to ``writes``."""

    def factory(d: Destination) -> Sink:
        return TimedSink(build_sink(d, local_root=local_root), d.id, writes)

    return factory


def delivered_events(worker: SinkWorker) -> int:
    """Events the worker has delivered so far, over all its destinations."""
    return sum(h.delivered_events for h in worker.health.values())


@dataclass
class WorkerRun:
    """A worker stepped until it delivered N events, timed in its steady state."""

    clock: SteadyClock
    read: int
    delivered: int
    timed: list[Write]
    """The writes after the clock started (the first poll's writes are not timed)."""


def run_until_delivered(
    worker: SinkWorker, writes: list[Write], n: int, what: str, timeout_s: float
) -> WorkerRun:
    """Step ``worker`` until it has delivered ``n`` events; ``writes`` is what its
    :func:`timed_factory` sinks append to."""
    clock = SteadyClock()
    deadline = Deadline(what, timeout_s)
    read = delivered = timed_from = 0
    while delivered < n:
        got = worker.step()
        read += got
        if read >= n:
            # Everything is read: write the open tail batches now instead of waiting for
            # their 5 s age limit, which would only measure the limit.
            worker.drain()
        if not clock.batch(got, time.perf_counter()) and got:
            timed_from = len(writes)
        delivered = delivered_events(worker)
        deadline.check(delivered, n)
    clock.stop()
    return WorkerRun(clock, read, delivered, writes[timed_from:])
