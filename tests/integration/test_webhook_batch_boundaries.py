"""On a real broker: webhook batches were sent and their offsets cannot be committed (the
group coordinator is gone), a rebalance takes a partition away and gives it back, and its
records are read again from the committed offset with more records behind them. Every
request the receiver sees twice must carry the same events under the same key, and no event
may arrive under two keys (ADR 018; the fault suite's `brokers` finding)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Consumer, Log, TopicPartition
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from auditstream.sinks import manifest_log
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.kafka import KafkaBroker
from devservices.webhook_receiver import WebhookReceiver
from tests.factories import make_event

pytestmark = pytest.mark.kafka

SECRET = b"boundaries-secret"
DESTS = ("hook-a", "hook-b")
"""Two destinations of one partition each: a second member of the group takes one of them."""
OPTIONS = WorkerOptions(commit_retry_base=0.2, commit_retry_cap=1.0, drain_timeout=5.0)


class CoordinatorGone:
    """A consumer whose commits fail while ``failing`` is set (the group coordinator is
    unreachable); everything else is the real consumer."""

    def __init__(self, inner: Consumer) -> None:
        self._inner = inner
        self.failing = threading.Event()
        self.group = inner.group

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.failing.is_set():
            raise LogError("kafka: commit offsets: Waiting for coordinator")
        self._inner.commit(offsets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CommitsFailLog:
    """A Kafka log whose sink consumers commit through :class:`CoordinatorGone`."""

    def __init__(self, inner: KafkaLog) -> None:
        self._inner = inner
        self.consumers: list[CoordinatorGone] = []

    def consumer(self, group: str, subscription: Any) -> Consumer:
        wrapped = CoordinatorGone(self._inner.consumer(group, subscription))
        if group == topics.SINK_GROUP:
            wrapped.failing.set()
        self.consumers.append(wrapped)
        return wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _produce(log: Log, n: int) -> set[str]:
    """``n`` events for each destination."""
    events = [make_event(account_id="acme") for _ in range(n * len(DESTS))]
    producer = log.producer()
    try:
        for i, event in enumerate(events):
            producer.produce(to_record(event, topics.destination_topic(DESTS[i % len(DESTS)])))
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


def _settings(url: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {
                    "id": dest,
                    "type": "webhook",
                    "url": url,
                    "secret": SECRET.decode(),
                    "batch": {"max_events": 500, "max_age_s": 0.3},
                }
                for dest in DESTS
            ],
        }
    )


def _take_one_partition(log: KafkaLog) -> Iterable[TopicPartition]:
    """Join the sink group until a partition is assigned here (taken from the worker), then
    leave without committing: the partition goes back to the worker."""
    member = log.consumer(topics.SINK_GROUP, topics.DESTINATION_PATTERN)
    try:
        deadline = time.monotonic() + 60
        while not member.assignment():
            member.poll(10, 0.2)
            assert time.monotonic() < deadline, "no partition assigned to the second member"
        return set(member.assignment())
    finally:
        member.close()


def test_records_read_again_after_a_rebalance_go_out_under_the_keys_they_were_sent_with(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    kafka = KafkaLog(kafka_broker.bootstrap)
    log = CommitsFailLog(kafka)
    try:
        with WebhookReceiver(SECRET) as receiver:
            publish_settings(kafka, [_settings(receiver.url)])
            for dest in DESTS:
                kafka.create_topic(topics.destination_topic(dest), partitions=1)
            want = _produce(kafka, 30)  # each destination's 30 sealed by age: [0-29]
            worker = SinkWorker(log, local_root=tmp_path, options=OPTIONS)
            stop = threading.Event()
            runner = threading.Thread(target=worker.run, args=(stop,), name="sink-worker")
            runner.start()
            try:

                def sent_everywhere() -> bool:
                    keys = {d.idempotency_key or "" for d in receiver.deliveries}
                    return len({key.split(":")[0] for key in keys if key}) == len(DESTS)

                _wait(sent_everywhere, 60, "a first batch sent to each destination")
                want |= _produce(kafka, 200)  # read again, they would join the first batch
                time.sleep(1.0)  # read and batched behind the uncommitted ones
                moved = _take_one_partition(kafka)  # revoked (its commit fails), given back
                assert moved
                sink_consumer = log.consumers[0]
                sink_consumer.failing.clear()  # the coordinator is back

                def caught_up() -> bool:
                    for dest in DESTS:
                        topic = topics.destination_topic(dest)
                        ends = kafka.end_offsets(topic)
                        if kafka.committed_offsets(topics.SINK_GROUP, topic) != ends:
                            return False
                    return True

                _wait(caught_up, 120, "committed offsets at the end of the topic")
            finally:
                stop.set()
                runner.join(60)
                worker.close()
            deliveries = receiver.deliveries
            boundaries = worker._manifest_log
            assert boundaries.writes >= 1  # stored before the first attempts
            batches = len({(d.idempotency_key, d.event_ids) for d in deliveries})
            print(  # the cost of storing them (reported, never asserted)
                f"sent batch boundaries: {boundaries.writes} waits for {batches} batches, "
                f"{1000 * boundaries.write_seconds / boundaries.writes:.1f} ms a wait"
            )
    finally:
        kafka.close()

    by_key: dict[str | None, set[tuple[str, ...]]] = {}
    keys_of: dict[str, set[str | None]] = {}
    for d in deliveries:
        by_key.setdefault(d.idempotency_key, set()).add(d.event_ids)
        for event_id in d.event_ids:
            keys_of.setdefault(event_id, set()).add(d.idempotency_key)
    assert {k: v for k, v in by_key.items() if len(v) > 1} == {}
    assert {e: k for e, k in keys_of.items() if len(k) > 1} == {}
    assert set(keys_of) == want
    repeated = [d for d in deliveries if d.duplicate]
    assert repeated  # the moved partition's first batch was read again and sent again
    assert all(d.idempotency_key is not None for d in repeated)
    assert {(d.idempotency_key or "").split(":", 1)[1] for d in repeated} == {"0:0-29"}


def test_a_worker_taking_over_after_a_kill_sends_the_batch_as_it_was_sent(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """The first worker sends a batch, cannot commit it and is gone without a word (its
    partitions are taken when its session expires, here at once by closing it); more
    records come; the next worker reads the boundaries stored in the log and sends the same
    request under the same key."""
    kafka = KafkaLog(kafka_broker.bootstrap)
    try:
        with WebhookReceiver(SECRET) as receiver:
            publish_settings(kafka, [_settings(receiver.url)])
            for dest in DESTS:
                kafka.create_topic(topics.destination_topic(dest), partitions=1)
            want = _produce(kafka, 30)
            first = SinkWorker(CommitsFailLog(kafka), local_root=tmp_path, options=OPTIONS)
            try:
                deadline = time.monotonic() + 60
                while receiver.requests < len(DESTS) or first.attempts_in_flight:
                    first.step()
                    assert time.monotonic() < deadline, "first batches not sent"
            finally:
                first.close()  # no drain, no commit: as if killed
            want |= _produce(kafka, 200)
            second = SinkWorker(kafka, local_root=tmp_path, options=OPTIONS)
            try:

                def caught_up() -> bool:
                    for dest in DESTS:
                        topic = topics.destination_topic(dest)
                        ends = kafka.end_offsets(topic)
                        if kafka.committed_offsets(topics.SINK_GROUP, topic) != ends:
                            return False
                    return True

                deadline = time.monotonic() + 120
                while not caught_up():
                    second.step()
                    assert time.monotonic() < deadline, "not caught up"
            finally:
                second.close()
            deliveries = receiver.deliveries
    finally:
        kafka.close()
    keys_of: dict[str, set[str | None]] = {}
    for d in deliveries:
        for event_id in d.event_ids:
            keys_of.setdefault(event_id, set()).add(d.idempotency_key)
    assert {e: k for e, k in keys_of.items() if len(k) > 1} == {}
    assert set(keys_of) == want
    repeated = {d.idempotency_key for d in deliveries if d.duplicate}
    assert repeated == {f"{dest}:0:0-29" for dest in DESTS}
    assert manifest_log.TOPIC in kafka_topics(kafka_broker)


def kafka_topics(broker: KafkaBroker) -> set[str]:
    kafka = KafkaLog(broker.bootstrap)
    try:
        return kafka.list_topics()
    finally:
        kafka.close()
