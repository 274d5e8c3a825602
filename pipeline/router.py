"""The router: activity topic → destination topics, per account settings, exactly once.

Each step reads a batch, routes every record (``pipeline.routing.route``), and produces the
copies and dead letters together with the consumed offsets in one transaction (a Kafka
transaction; one SQLite transaction on the embedded log). If the transaction aborts, the
consumer rewinds to the committed offsets and the batch is routed again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from auditstream.config.secrets import SecretBox
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import metrics, topics
from auditstream.pipeline.errors import FencedError, LogError
from auditstream.pipeline.log import Log, OutgoingRecord, TopicPartition
from auditstream.pipeline.process_reports import ProcessReporter
from auditstream.pipeline.routing import SETTINGS_ACTIVITIES, route
from auditstream.pipeline.settings_view import SettingsView
from auditstream.pipeline.topic_setup import ensure_core_topics

log = logging.getLogger(__name__)


class Router:
    """Routes activity events. ``step`` is one batch; ``run`` loops until ``stop`` is set."""

    def __init__(
        self,
        log_backend: Log,
        *,
        transactional_id: str | None = None,
        batch_size: int = 2000,
        poll_timeout: float = 0.2,
        activity_partitions: int = 1,
        box: SecretBox | None = None,
    ) -> None:
        self._log = log_backend
        ensure_core_topics(log_backend, activity_partitions)
        self.settings = SettingsView(log_backend, on_change=self._settings_changed, box=box)
        try:
            self.settings.catch_up()
            self.settings.require_keys()
        except BaseException:
            self.settings.close()  # nothing else is open yet
            raise
        self._consumer = log_backend.consumer(topics.ROUTER_GROUP, [topics.ACTIVITY])
        router_id = transactional_id or f"auditstream-router-{uuid.uuid4()}"
        self._producer = log_backend.transactional_producer(router_id)
        self._reporter = ProcessReporter(log_backend, "router", router_id)
        self._batch_size = batch_size
        self._poll_timeout = poll_timeout
        self.consumed = 0

    def _settings_changed(self, account_id: str, settings: AccountSettings | None) -> None:
        # Destination topics exist before the first copy is produced to them.
        if settings is not None:
            for d in settings.destinations:
                self._log.create_topic(topics.destination_topic(d.id))

    def step(self) -> int:
        """Route one batch; returns how many activity records it consumed."""
        self.settings.poll()
        self._reporter.maybe_publish(self.settings.unapplied())
        records = self._consumer.poll(self._batch_size, self._poll_timeout)
        if not records:
            return 0
        if any(
            (r.header("activity") or b"").decode(errors="replace") in SETTINGS_ACTIVITIES
            for r in records
        ):
            # The settings API writes a change and its audit event in one transaction: read
            # the settings up to now, so the event is routed with the settings it announces.
            try:
                self.settings.catch_up(timeout=5.0)
            except TimeoutError:
                log.warning("settings not read to their end; routing with the current view")
        out: list[OutgoingRecord] = []
        offsets: dict[TopicPartition, int] = {}
        routed = 0
        filtered: dict[str, int] = {}
        dead: dict[str, int] = {}
        for record in records:
            result = route(record, self.settings.account, self.settings.previous)
            out.extend(result.out)
            offsets[record.tp] = record.offset + 1
            if result.dead_letter_reason is not None:
                dead[result.dead_letter_reason] = dead.get(result.dead_letter_reason, 0) + 1
                log.warning(
                    "dead-lettered %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    result.dead_letter_reason,
                )
            elif result.out:
                routed += len(result.out)
            elif result.decision is not None:
                filtered[result.decision.value] = filtered.get(result.decision.value, 0) + 1
        started = time.perf_counter()
        try:
            self._producer.produce_and_commit(out, self._consumer, offsets)
        except FencedError:
            raise
        except LogError as exc:  # aborted, or refused (e.g. a destination topic just deleted)
            metrics.TRANSACTIONS.labels(outcome="aborted").inc()
            log.warning("routing transaction aborted, re-reading the batch: %s", exc)
            self._rewind(offsets)
            return 0
        metrics.TRANSACTION_SECONDS.observe(time.perf_counter() - started)
        metrics.TRANSACTIONS.labels(outcome="committed").inc()
        metrics.EVENTS_CONSUMED.inc(len(records))
        metrics.EVENTS_ROUTED.inc(routed)
        for reason, n in filtered.items():
            metrics.EVENTS_FILTERED.labels(reason=reason).inc(n)
        for reason, n in dead.items():
            metrics.EVENTS_DEAD_LETTERED.labels(reason=reason).inc(n)
        self.consumed += len(records)
        return len(records)

    def _rewind(self, offsets: dict[TopicPartition, int]) -> None:
        committed = self._consumer.committed(offsets.keys())
        for tp in offsets:
            self._consumer.seek(tp, committed.get(tp, 0))

    def lag(self) -> int:
        """Activity records not yet routed (end offsets minus committed offsets)."""
        ends = self._log.end_offsets(topics.ACTIVITY)
        committed = self._consumer.committed(ends.keys())
        return sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def close(self) -> None:
        self._consumer.close()
        self._producer.close()
        self._reporter.close()
        self.settings.close()
