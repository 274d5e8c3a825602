"""The sink worker: destination topics → batches → delivery lanes → destinations.

One poll loop owns the consumer, the settings view and every piece of state: it polls, fills
one batch per partition until a count, byte or age limit, seals it and hands it to its
destination's lane (:mod:`sinks.lanes`). Lanes run their attempts on a bounded set of delivery
threads (:mod:`sinks.delivery_threads`); an attempt is one write, and its result comes back
through a queue the poll loop drains. A failed batch stays in its lane and is retried as it is
when its backoff timer is due, so a destination that hangs or fails holds at most its own
attempts, never the loop, the settings, the status reports or another lane.

Guarantees:

- A partition's offset is committed up to the end of the longest run of stored batches from
  its oldest uncommitted one (:mod:`sinks.offsets`); nothing is committed for a batch that is
  not stored, on revocation or when stopping either. While a commit fails, the partition sends
  nothing new (so at most one stored batch is ever uncommitted: a replay after a crash
  rewrites the same object) and the commit is retried.
- A batch is identified by its boundaries (a webhook's ``Idempotency-Key``, an object key):
  once its first attempt begins they are kept until its offsets are committed, and records read
  again in this process (a failed commit and a revocation, a reassignment, a rewind) are cut
  to them, so a repeat is the same request under the same key (:mod:`sinks.batch_manifests`,
  ADR 018); they are stored in the log before the first attempt, and a worker that takes a
  partition over reads them before it forms its first batch there.
- Memory is bounded: every record held counts at its decoded size and one cap bounds them all
  (:mod:`sinks.backpressure`); the fullest lanes stop reading first.
- A destination's state (:mod:`sinks.health`) is kept per account and destination, published
  to the status topic and to metrics.

:class:`SinkWorker` holds the poll loop; each concern is a part it inherits, one module each,
all working on the state of :mod:`sinks.worker_state`: :mod:`sinks.batching` and
:mod:`sinks.replays` (reading), :mod:`sinks.dispatch` and :mod:`sinks.attempt_outcomes`
(delivery), :mod:`sinks.commits`, :mod:`sinks.settings_follower`, :mod:`sinks.memory_balance`
and :mod:`sinks.status_reports`.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.log import Log, Record, TopicPartition
from auditstream.pipeline.process_reports import ProcessReporter
from auditstream.pipeline.settings_view import SettingsView
from auditstream.pipeline.topic_setup import ensure_core_topics
from auditstream.sinks import backpressure
from auditstream.sinks.attempt_outcomes import AttemptOutcomes
from auditstream.sinks.attempts import AttemptResult
from auditstream.sinks.batch_manifests import BatchManifests
from auditstream.sinks.commits import OffsetCommits
from auditstream.sinks.committer import Committer
from auditstream.sinks.delivery_threads import DeliveryThreads
from auditstream.sinks.destination_signals import DestinationSignals
from auditstream.sinks.dispatch import Dispatch
from auditstream.sinks.factory import build_sink
from auditstream.sinks.health import DestinationHealth
from auditstream.sinks.lanes import Lane, LaneKey, SinkFactory
from auditstream.sinks.manifest_log import ManifestLog
from auditstream.sinks.memory_balance import MemoryBalancer
from auditstream.sinks.offsets import OffsetBook
from auditstream.sinks.partitions import PartitionState
from auditstream.sinks.settings_follower import SettingsFollower
from auditstream.sinks.state_events import StateAnnouncer
from auditstream.sinks.status import StatusPublisher
from auditstream.sinks.status_reports import StatusReports
from auditstream.sinks.worker_options import WorkerOptions

log = logging.getLogger(__name__)

__all__ = ["SinkFactory", "SinkWorker", "WorkerOptions"]

_SINK_MODULES = {
    "s3": "auditstream.sinks.s3",
    "gcs": "auditstream.sinks.gcs",
    "azure_blob": "auditstream.sinks.azure_blob",
}
"""Sink modules whose vendor SDKs take a second or so to import (boto3 most)."""


def _import_sink_modules(accounts: Iterable[AccountSettings]) -> threading.Thread:
    """Import, on a thread of its own, the sink modules the destinations of ``accounts`` will
    need, while the worker catches up with its other topics: the first batch of an S3
    destination otherwise waited for boto3's import. Returns the thread (joined on close)."""
    names = sorted(
        {_SINK_MODULES[d.type] for a in accounts for d in a.destinations if d.type in _SINK_MODULES}
    )

    def run() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as exc:  # the sink factory raises it again, where it is handled
                log.debug("importing %s ahead failed: %r", name, exc)

    thread = threading.Thread(target=run, name="sink-imports", daemon=True)
    thread.start()
    return thread


class SinkWorker(
    SettingsFollower, MemoryBalancer, Dispatch, AttemptOutcomes, OffsetCommits, StatusReports
):
    """Consumes every destination topic (regex subscription) in the group ``auditstream-sinks``.

    Run more workers to scale out on Kafka: partitions are balanced between them. Not
    thread-safe: one thread calls :meth:`step` (or :meth:`run`), :meth:`drain` and
    :meth:`close`. ``clock`` (monotonic) times batches and backoffs; ``wall_clock`` (epoch)
    stamps the reported health.
    """

    def __init__(
        self,
        log_backend: Log,
        *,
        options: WorkerOptions | None = None,
        sink_factory: SinkFactory | None = None,
        local_root: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        box: SecretBox | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or WorkerOptions()
        self._log = log_backend
        ensure_core_topics(log_backend)
        self.settings = SettingsView(log_backend, box=box)
        # The other views are opened now and read after the settings: a Kafka reader fetches
        # from the moment it is opened, so their first fetches overlap (each took about 0.5 s
        # when a view was opened only once the one before was read).
        self._restored: dict[str, dict[str, Any]] = {}
        manifest_log: ManifestLog | None = None
        status_view: CompactedTopicView | None = None
        try:
            manifest_log = ManifestLog(log_backend, catch_up=False)
            status_view = self._open_status_view()
            self.settings.catch_up()
            self.settings.require_keys()
        except BaseException:
            for view in (status_view, manifest_log):
                if view is not None:
                    view.close()
            self.settings.close()  # nothing else is open yet
            raise
        self._manifest_log, self._status_view = manifest_log, status_view
        self._settings_version = self.settings.version
        self._imports = _import_sink_modules(self.settings.accounts().values())
        self._consumer = log_backend.consumer(topics.SINK_GROUP, topics.DESTINATION_PATTERN)
        self._consumer.on_revoke(self._revoked)
        self._producer = log_backend.producer()
        self._manifest_log.catch_up()
        self._dlq_errors: list[Exception] = []
        self._factory: SinkFactory = sink_factory or (
            lambda d: build_sink(d, local_root=local_root)
        )
        self._clock = clock
        self._wall = wall_clock
        self._lanes: dict[LaneKey, Lane] = {}
        self._retiring: set[Lane] = set()
        self._partitions: dict[TopicPartition, PartitionState] = {}
        self._health: dict[LaneKey, DestinationHealth] = {}
        self._offsets = OffsetBook()
        self._manifests = BatchManifests()
        self._results: queue.SimpleQueue[AttemptResult] = queue.SimpleQueue()
        exact_crash = self.options.exit_after_writes is not None
        self._threads = DeliveryThreads(1 if exact_crash else self.options.delivery_threads)
        self._busy = 0
        self._writes = 0
        self._generations = itertools.count(1)
        self._memory_paused: set[LaneKey] = set()
        self._held_total = 0
        self._record_estimate = 4096.0
        self._rotation = 0
        self._commit_retry_at: float | None = None
        self._commit_failures = 0
        self._commit_stall_reported = False
        self._committer = Committer(self._consumer.commit)
        self._reported_at = -math.inf
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self._reporter = ProcessReporter(log_backend, "sink-worker", self.worker_id)
        self._status = StatusPublisher(
            log_backend, self.worker_id, self.options.status_interval, clock=clock
        )
        self._signals = DestinationSignals(
            log_backend, interval=self.options.signals_interval, wall_clock=wall_clock
        )
        self._announcer = StateAnnouncer(self._producer, wall_clock)
        self._catch_up_status_view()

    # what the worker knows -------------------------------------------------------------------

    @property
    def health(self) -> dict[str, DestinationHealth]:
        """Health by destination id (each destination as the current account's)."""
        return {key[1]: h for key, h in self._health.items()}

    def health_of(self, account_id: str, destination_id: str) -> DestinationHealth | None:
        return self._health.get((account_id, destination_id))

    @property
    def attempts_in_flight(self) -> int:
        return self._busy

    @property
    def held_bytes(self) -> int:
        """The memory estimate of the records held, as of the last step."""
        return self._held_total

    def paused_partitions(self) -> dict[TopicPartition, set[str]]:
        """Every partition not read now, and why."""
        return {tp: set(ps.pauses) for tp, ps in self._partitions.items() if ps.pauses}

    # the poll loop ---------------------------------------------------------------------------

    def step(self) -> int:
        """Follow the settings, apply finished attempts, commit, start due attempts, poll once
        and batch what was read. Never waits on a destination. Returns records read."""
        self._follow_settings()
        self._collect()
        now = self._clock()
        self._seal_aged(now)
        self._advance_failures()
        self._commit(now)
        self._dispatch(now)
        self._refresh_lane_full()
        self._retry_seeks()
        self._balance_memory()
        records = self._poll()
        self._take(records)
        self._collect()
        now = self._clock()
        self._commit(now)
        self._dispatch(now)
        self._report(now)
        return len(records)

    def _poll(self) -> list[Record]:
        budget = backpressure.poll_budget(
            self._held_total,
            self.options.max_buffered_bytes,
            self._record_estimate,
            self.options.poll_records,
        )
        if not self._busy:
            return self._consumer.poll(budget, self.options.poll_timeout)
        # Attempts are under way: wait for whichever comes first, a result or (at most 50 ms
        # later) new records.
        records = self._consumer.poll(budget, 0.0)
        if not records:
            self._await_result(min(self.options.poll_timeout, 0.05))
        return records

    def _await_result(self, timeout: float) -> None:
        try:
            result = self._results.get(timeout=timeout) if timeout > 0 else None
        except queue.Empty:
            return
        if result is not None:
            self._busy -= 1
            self._apply(result)

    def _collect(self) -> None:
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return
            self._busy -= 1
            self._apply(result)

    # lifecycle -------------------------------------------------------------------------------

    def drain(self, timeout: float | None = None) -> bool:
        """Seal every open batch and deliver what can be delivered now; returns when no
        attempt is in flight and no lane has a batch it may send now (lanes waiting for a
        retry are not waited for), or after ``timeout`` seconds of real time (default
        ``options.drain_timeout``). True if every batch read was stored."""
        for ps in self._partitions.values():
            lane = self._lanes.get(ps.lane_key) if ps.lane_key is not None else None
            if lane is not None and ps.open is not None and not self._awaits_sent_end(ps):
                self._seal(ps, lane)  # (part of a batch sent before is left to be read again)
        deadline = time.monotonic() + (self.options.drain_timeout if timeout is None else timeout)
        while True:
            self._collect()
            now = self._clock()
            self._commit(now)
            self._dispatch(now)
            sending = any(self._may_send(lane, now) for lane in self._lanes.values())
            if self._busy == 0 and not sending and not self._committer.busy:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._await_result(min(0.05, remaining))
        self._collect()
        self._commit(self._clock())
        self._report(self._clock(), force=True)
        return all(lane.idle() for lane in self._lanes.values())

    def _may_send(self, lane: Lane, now: float) -> bool:
        if lane.held or not lane.has_work():
            return False
        return lane.retry_at is None or now >= lane.retry_at

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, then drain (within ``options.drain_timeout``): what
        is not stored by then is not committed, and is read again by the next owner."""
        while not stop.is_set():
            self.step()
        if not self.drain():
            log.warning(
                "stopping with %d attempts in flight; their batches are not committed",
                self._busy,
            )

    def close(self) -> None:
        self._imports.join()
        self._threads.close()
        self._signals.close()
        for lane in [*self._lanes.values(), *self._retiring]:
            if not lane.in_flight:
                lane.close_sink()
        waiting = self._announce(2.0)
        self._producer.close()
        self._manifest_log.close()
        for key, health in self._health.items():
            if key[0] and key not in waiting:
                self._status.forget(key[1])
                self._status.maybe_publish(key[1], health)
        self._status.close()
        self._status_view.close()
        self._reporter.close()
        self._committer.close()
        self._consumer.close()
        self.settings.close()
