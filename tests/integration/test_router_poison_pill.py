"""A record the router cannot copy (a 5 MB event, accepted by the broker because it is small
compressed) is dead-lettered with its reason and the router moves on: every other account's
events are routed, the committed offset passes it, no transaction loops on it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import metrics, topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log, OutgoingRecord, Record
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES, record_size
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import to_record
from auditstream.schemas import codec
from devservices.kafka import KafkaBroker
from tests.factories import make_event

ACCOUNTS = ("acme", "globex", "initech")
FIVE_MB = 5 * 1024 * 1024


def _settings() -> list[AccountSettings]:
    return [
        AccountSettings.model_validate(
            {
                "account_id": a,
                "destinations": [{"id": f"{a}-files", "type": "local", "path": a}],
            }
        )
        for a in ACCOUNTS
    ]


def _padded_event(account: str, size: int, *, random: bool = False) -> dict[str, Any]:
    pad = os.urandom(size // 2).hex() if random else "x" * size
    return make_event(account_id=account, details={"pad": pad})


def _events() -> tuple[list[OutgoingRecord], int]:
    """Normal events of every account, the poison record (acme's) in the middle: its index."""
    before = [to_record(make_event(account_id=a)) for _ in range(10) for a in ACCOUNTS]
    after = [to_record(make_event(account_id=a)) for _ in range(10) for a in ACCOUNTS]
    # Built as the SDK builds a record, without its validation: a producer that skips it.
    poison = _padded_event("acme", FIVE_MB)
    record = to_record(make_event(account_id="acme"))
    record = OutgoingRecord(record.topic, codec.encode(poison), record.key, record.headers)
    return [*before, record, *after], len(before)


def _produce_raw(log: Log, records: list[OutgoingRecord], tmp_path: Path) -> None:
    """Produce past the router's limit: a zstd producer allowing 10 MB records on Kafka (the
    broker checks the compressed size), a permissive handle on the same file when embedded."""
    if isinstance(log, KafkaLog):
        producer = Producer(
            {
                "bootstrap.servers": log.bootstrap,
                "compression.type": "zstd",
                "message.max.bytes": 10_000_000,
                "enable.idempotence": True,
            }
        )
        errors: list[str] = []
        for r in records:
            producer.produce(
                r.topic,
                value=r.value,
                key=r.key,
                headers=list(r.headers),
                on_delivery=lambda err, _m: errors.append(err.str()) if err else None,
            )
        assert producer.flush(60) == 0
        assert errors == []
        del producer
        return
    assert isinstance(log, EmbeddedLog)
    permissive = EmbeddedLog(log.path, max_record_bytes=10_000_000)
    raw = permissive.producer()
    for r in records:
        raw.produce(r)
    raw.close()
    permissive.close()


def _read(log: Log, topic: str, expected: int, timeout: float = 60) -> list[Record]:
    reader = log.reader(topic)
    found: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        found.extend(reader.poll(500, 0.5))
    found.extend(reader.poll(500, 0.5))  # and nothing more
    reader.close()
    return found


def _route_all(router: Router, total: int, timeout: float = 120) -> int:
    steps = 0
    deadline = time.monotonic() + timeout
    while router.consumed < total:
        assert time.monotonic() < deadline, f"routed {router.consumed} of {total}"
        router.step()
        steps += 1
    return steps


def _aborted() -> float:
    return float(metrics.TRANSACTIONS.labels(outcome="aborted")._value.get())


def _check_routed(log: Log, records: list[OutgoingRecord], poison_at: int) -> None:
    for account in ACCOUNTS:
        want = sorted(
            codec.decode(r.value)["event_id"]
            for i, r in enumerate(records)
            if i != poison_at and r.key == account.encode()
        )
        copies = _read(log, topics.destination_topic(f"{account}-files"), len(want))
        assert sorted(codec.decode(c.value)["event_id"] for c in copies) == want
    ends = log.end_offsets(topics.ACTIVITY)
    assert log.committed_offsets(topics.ROUTER_GROUP, topics.ACTIVITY) == ends


def test_five_mb_record_is_dead_lettered_and_every_other_event_routed(
    any_log: Log, tmp_path: Path
) -> None:
    log = any_log
    publish_settings(log, _settings())
    records, poison_at = _events()
    router = Router(log)
    try:
        _produce_raw(log, records, tmp_path)
        aborted = _aborted()
        _route_all(router, len(records))
        assert _aborted() == aborted  # caught before producing: no transaction failed
    finally:
        router.close()
    (dead,) = _read(log, topics.DEAD_LETTERS, 1)
    assert dead.header("dlq.reason") == b"too_large"
    assert dead.header("dlq.stage") == b"router"
    assert dead.header("dlq.source.offset") == str(poison_at).encode()
    assert dead.header("dlq.value.size") == str(len(records[poison_at].value)).encode()
    assert b"byte limit" in (dead.header("dlq.detail") or b"")
    assert records[poison_at].value.startswith(dead.value)
    assert record_size(dead.key, dead.value, dead.headers) <= MAX_RECORD_BYTES
    _check_routed(log, records, poison_at)


def test_record_refused_by_the_kafka_client_is_isolated_and_dead_lettered(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    # A router told a larger limit than its producer's: the size check lets the record
    # through, librdkafka refuses it (MSG_SIZE_TOO_LARGE) inside the transaction.
    log = KafkaLog(kafka_broker.bootstrap)
    try:
        publish_settings(log, _settings())
        records, poison_at = _events()
        _produce_raw(log, records, tmp_path)
        router = Router(log, max_record_bytes=10_000_000)
        try:
            _route_all(router, len(records))
        finally:
            router.close()
        (dead,) = _read(log, topics.DEAD_LETTERS, 1)
        assert dead.header("dlq.reason") == b"too_large"
        assert dead.header("dlq.source.offset") == str(poison_at).encode()
        assert b"refused" in (dead.header("dlq.detail") or b"")
        # Whole, it was refused as a dead letter too: kept without its body.
        assert dead.value == b""
        assert dead.header("dlq.value.size") == str(len(records[poison_at].value)).encode()
        _check_routed(log, records, poison_at)
    finally:
        log.close()


def test_record_refused_by_the_broker_is_isolated_and_dead_lettered(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    # acme's destination topic takes records up to 20 kB; a 60 kB event of random bytes
    # (incompressible) passes the router's check and is refused by the broker, with the
    # rest of its batch: the delivery reports name every record of that batch.
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    topic = topics.destination_topic("acme-files")
    futures = admin.create_topics(
        [NewTopic(topic, 1, 1, config={"max.message.bytes": "20000"})], operation_timeout=30
    )
    futures[topic].result(30)
    del admin
    log = KafkaLog(kafka_broker.bootstrap)
    try:
        publish_settings(log, _settings())
        records, poison_at = _events()
        big = to_record(_padded_event("acme", 60_000, random=True))
        records[poison_at] = big
        _produce_raw(log, records, tmp_path)
        router = Router(log)
        try:
            _route_all(router, len(records))
            assert router.step() == 0
        finally:
            router.close()
        (dead,) = _read(log, topics.DEAD_LETTERS, 1)
        assert dead.header("dlq.reason") == b"too_large"
        assert dead.header("dlq.source.offset") == str(poison_at).encode()
        assert b"Message size too large" in (dead.header("dlq.detail") or b"")
        assert dead.value == big.value  # the dead-letter topic has the default limit
        _check_routed(log, records, poison_at)
    finally:
        log.close()
