"""The indexer on a real Kafka broker: a poison record is dead-lettered and the others stored;
a batch the group reads again (stored, never committed: a crash) is stored once."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import REGISTRY

from auditstream.pipeline import dead_letters, topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord, Record
from auditstream.producers.sdk import to_record
from auditstream.store.index_records import sort_records
from auditstream.store.indexer import INDEXER_GROUP, Indexer, IndexerOptions
from auditstream.store.query import ActivityFilter, Checkpoint
from auditstream.store.sqlite_store import SqliteStore
from devservices.kafka import KafkaBroker
from tests.factories import make_event

ACCOUNTS = ("acme", "globex", "initech")


def _produce(log: KafkaLog, records: list[OutgoingRecord]) -> None:
    producer = log.producer()
    for record in records:
        producer.produce(record)
    assert producer.flush(60) == 0
    producer.close()


def _read(log: KafkaLog, topic: str, expected: int, timeout: float = 60) -> list[Record]:
    reader = log.reader(topic)
    found: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            found.extend(reader.poll(500, 0.5))
    finally:
        reader.close()
    return found


def test_poison_record_and_a_redelivered_batch(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    log = KafkaLog(kafka_broker.bootstrap)
    store = SqliteStore(tmp_path / "audit.db")
    try:
        log.create_topic(topics.ACTIVITY, partitions=3)
        events = [make_event(account_id=a) for _ in range(20) for a in ACCOUNTS]
        good = [to_record(e) for e in events]
        poison = OutgoingRecord(
            topics.ACTIVITY, good[0].value[:10] + b"\x02garbage", b"acme", good[0].headers
        )
        _produce(log, [*good[:30], poison, *good[30:]])

        # A process that stored what it read and died before committing: nothing committed.
        crashed = log.consumer(INDEXER_GROUP, [topics.ACTIVITY])
        taken: list[Record] = []
        deadline = time.monotonic() + 60
        while len(taken) < 20 and time.monotonic() < deadline:
            taken.extend(crashed.poll(20 - len(taken), 1.0))
        crashed.close()
        early = sort_records(taken)
        assert store.append([event for _, event in early.events]).inserted == len(early.events)

        duplicates_before = (
            REGISTRY.get_sample_value("auditstream_indexer_events_duplicate_total") or 0.0
        )
        indexer = Indexer(
            log, store, IndexerOptions(batch_size=25, retention_interval_s=0, poll_timeout_s=1.0)
        )
        try:
            deadline = time.monotonic() + 120
            while store.count(ActivityFilter("acme")) + store.count(
                ActivityFilter("globex")
            ) + store.count(ActivityFilter("initech")) < len(events):
                assert time.monotonic() < deadline, "the indexer did not store every event"
                indexer.step()
            ends = log.end_offsets(topics.ACTIVITY)
            while log.committed_offsets(INDEXER_GROUP, topics.ACTIVITY) != ends:
                assert time.monotonic() < deadline, "the indexer did not commit every record"
                indexer.step()
        finally:
            indexer.close()

        for account in ACCOUNTS:
            stored = store.after(account, Checkpoint(), 1000).events
            want = [str(e["event_id"]) for e in events if e["account_id"] == account]
            assert [e.event_id for e in stored] == want  # once each, in the partition's order
            assert store.verify(account).ok
        [letter] = _read(log, topics.DEAD_LETTERS, 1)
        assert letter.header(dead_letters.STAGE) == b"indexer"
        assert letter.header(dead_letters.REASON) == b"malformed"
        assert letter.value == poison.value
        duplicates = REGISTRY.get_sample_value("auditstream_indexer_events_duplicate_total")
        assert duplicates is not None
        assert duplicates - duplicates_before == len(early.events) > 0
    finally:
        store.close()
        log.close()
