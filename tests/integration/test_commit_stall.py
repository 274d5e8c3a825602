"""On a real broker: the broker stops while a sink worker is storing batches to a local
directory, and starts again on the same ports and data. A batch stored while the broker is down
cannot be committed: its destination must say so (not ``active``) while the commit fails, the
commit must be retried once the broker is back, and the partition must move on. In the end every
event is stored exactly once and the committed offsets reach the end of the topic.

Hardening item 14: a partition stalled for 8.5 minutes after "commit after write failed ...
Waiting for coordinator" while its status said active."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from auditstream.config.destinations import Destination
from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from auditstream.sinks.base import CheckResult, Sink, WriteResult
from auditstream.sinks.batch import Batch
from auditstream.sinks.factory import build_sink
from auditstream.sinks.health import State
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.kafka import KafkaBroker
from tests.e2e.harness import local_event_ids
from tests.factories import make_event

pytestmark = pytest.mark.kafka

DEST = "files"
TOPIC = topics.destination_topic(DEST)
PARTITIONS = 2
OPTIONS = WorkerOptions(commit_retry_base=0.2, commit_retry_cap=2.0, drain_timeout=5.0)


class SlowSink:
    """A local-directory sink whose writes take ``delay`` seconds of real time: batches are
    still being stored when the broker stops."""

    def __init__(self, inner: Sink, delay: float) -> None:
        self._inner = inner
        self._delay = delay
        self.type = inner.type

    def write(self, batch: Batch) -> WriteResult:
        time.sleep(self._delay)
        return self._inner.write(batch)

    def probe(self) -> CheckResult:
        return self._inner.probe()

    def is_retryable(self, exc: BaseException) -> bool:
        return self._inner.is_retryable(exc)

    def close(self) -> None:
        self._inner.close()


def _produce(log: Log, n: int) -> set[str]:
    events = [make_event(account_id="acme") for _ in range(n)]
    producer = log.producer()
    try:
        for i, event in enumerate(events):
            record = to_record(event, TOPIC)
            # Keyed by account, every event would go to one partition: spread them.
            producer.produce(replace(record, key=f"k{i % PARTITIONS}".encode()))
        assert producer.flush(30.0) == 0
    finally:
        producer.close()
    return {str(e["event_id"]) for e in events}


def _wait(done: Callable[[], bool], guard_s: float, what: str) -> None:
    """Wait for ``done()``; the guard only stops a broken test from hanging."""
    deadline = time.monotonic() + guard_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached: {what}")
        time.sleep(0.05)


def test_a_commit_failed_while_the_broker_is_down_is_shown_retried_and_resumed(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    out = tmp_path / "out"
    settings = AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": DEST,
                    "type": "local",
                    "path": DEST,
                    "batch": {"max_events": 20, "max_age_s": 0.3},
                }
            ],
        }
    )
    publish_settings(log, [settings])
    log.create_topic(TOPIC, partitions=PARTITIONS)
    want = _produce(log, 600)

    def factory(destination: Destination) -> Sink:
        return SlowSink(build_sink(destination, local_root=out), delay=0.15)

    worker = SinkWorker(log, options=OPTIONS, sink_factory=factory)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,), name="sink-worker")
    runner.start()
    seen: list[tuple[State, str | None]] = []
    try:
        _wait(lambda: len(local_event_ids(out / DEST)) >= 100, 60, "first batches stored")
        kafka_broker.stop()
        stopped_with = len(local_event_ids(out / DEST))
        assert stopped_with < len(want)  # batches were still being stored

        # While the broker is down, what was read is stored and cannot be committed.
        def stalled() -> bool:
            health = worker.health_of("acme", DEST)
            if health is not None:
                seen.append((health.state, health.last_cause))
            return health is not None and health.state is not State.ACTIVE

        _wait(stalled, 60, "the stall shown in the destination's health")
        state, cause = seen[-1]
        assert state is State.FAILING
        assert cause == "offset_commit"

        kafka_broker.restart()
        want |= _produce(log, 200)

        def caught_up() -> bool:
            ends = log.end_offsets(TOPIC)
            return log.committed_offsets(topics.SINK_GROUP, TOPIC) == ends

        _wait(caught_up, 180, "committed offsets at the end of the topic")
        health = worker.health_of("acme", DEST)
        assert health is not None
        assert health.state is State.ACTIVE
    finally:
        stop.set()
        runner.join(60)
        worker.close()
        log.close()
    stored = local_event_ids(out / DEST)
    assert set(stored) == want
    assert [i for i, n in Counter(stored).items() if n > 1] == []
