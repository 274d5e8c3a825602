"""Indexers on a real Kafka broker sharing the activity topic's partitions while the group
rebalances (a second joins mid-stream, then leaves mid-stream): every event is stored once, in
its partition's order, and every account's chain verifies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.producers.sdk import to_record
from auditstream.store.indexer import Indexer, IndexerOptions
from auditstream.store.query import ActivityFilter, Checkpoint
from auditstream.store.sqlite_store import SqliteStore
from devservices.kafka import KafkaBroker
from tests.factories import make_event

ACCOUNTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
WAVES = 3
PER_WAVE = 600


@contextmanager
def _running(bootstrap: str, path: Path) -> Iterator[threading.Event]:
    """An indexer process of its own (its own log client and store connection) on a thread."""
    log = KafkaLog(bootstrap)
    store = SqliteStore(path)
    stop = threading.Event()
    indexer = Indexer(
        log,
        store,
        IndexerOptions(batch_size=50, retention_interval_s=0, poll_timeout_s=0.5),
        activity_partitions=3,
    )
    thread = threading.Thread(target=indexer.run, args=(stop,), name="test-indexer")
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=120)
        indexer.close()
        store.close()
        log.close()


def _stored(store: SqliteStore) -> int:
    return sum(store.count(ActivityFilter(a)) for a in ACCOUNTS)


def _wait_for(store: SqliteStore, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while _stored(store) < count:
        assert time.monotonic() < deadline, f"{_stored(store)} of {count} events stored"
        time.sleep(0.2)


def test_two_indexers_through_rebalances_store_each_event_once(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    path = tmp_path / "audit.db"
    log = KafkaLog(kafka_broker.bootstrap)
    store = SqliteStore(path)
    producer = log.producer()
    events = []

    def wave() -> None:
        batch = [
            make_event(account_id=a) for _ in range(PER_WAVE // len(ACCOUNTS)) for a in ACCOUNTS
        ]
        for event in batch:
            producer.produce(to_record(event))
        assert producer.flush(60) == 0
        events.extend(batch)

    try:
        log.create_topic(topics.ACTIVITY, partitions=3)
        wave()
        with _running(kafka_broker.bootstrap, path):
            _wait_for(store, PER_WAVE // 3)
            with _running(kafka_broker.bootstrap, path) as second:
                wave()  # read while the group hands partitions to the newcomer
                _wait_for(store, PER_WAVE + PER_WAVE // 3)
                second.set()  # the newcomer stops mid-stream; the first takes its partitions
                wave()
            _wait_for(store, WAVES * PER_WAVE)
        for account in ACCOUNTS:
            stored = store.after(account, Checkpoint(), 1000).events
            want = [str(e["event_id"]) for e in events if e["account_id"] == account]
            assert [e.event_id for e in stored] == want  # once each, in the partition's order
            assert store.verify(account).ok
    finally:
        producer.close()
        store.close()
        log.close()
