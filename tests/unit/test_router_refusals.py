"""A record the log refuses is isolated and dead-lettered; the rest of the batch is routed.

The router runs on the embedded log; a wrapper around its transactional producer refuses
records the way a Kafka broker refuses a batch: every record of the topic the offending
record goes to is named, not only the offender.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError, RecordRefused, Refusal
from auditstream.pipeline.log import Consumer, OutgoingRecord, Record, TopicPartition
from auditstream.pipeline.router import MAX_REFUSALS, Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from tests.factories import make_event

MARK = b"POISON-PILL"
SETTINGS = AccountSettings.model_validate(
    {
        "account_id": "acme",
        "destinations": [
            {"id": "a1", "type": "local", "path": "a"},
            {"id": "a2", "type": "local", "path": "b"},
        ],
    }
)


class BrokerLike:
    """Refuses a transaction holding a record ``bad`` names (with the reason it returns),
    naming every record bound for the same topic; otherwise stores it."""

    def __init__(
        self,
        inner: object,
        bad: Callable[[OutgoingRecord], str | None],
        *,
        permanent: bool = True,
    ) -> None:
        self.inner = inner
        self.bad = bad
        self.permanent = permanent
        self.transactions = 0
        self.refused = 0

    def produce_and_commit(
        self,
        records: Sequence[OutgoingRecord],
        consumer: Consumer,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        self.transactions += 1
        reasons = {r.topic: why for r in records if (why := self.bad(r)) is not None}
        if reasons:
            self.refused += 1
            raise RecordRefused(
                [
                    Refusal(i, reasons[r.topic], "Broker: Message size too large", self.permanent)
                    for i, r in enumerate(records)
                    if r.topic in reasons
                ]
            )
        self.inner.produce_and_commit(records, consumer, offsets)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


def poisoned(r: OutgoingRecord) -> str | None:
    """Refuses copies of the marked record, not its dead letter."""
    return "too_large" if MARK in r.value and r.topic != topics.DEAD_LETTERS else None


def poisoned_everywhere(r: OutgoingRecord) -> str | None:
    return "too_large" if MARK in r.value else None


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    publish_settings(log, [SETTINGS])
    yield log
    log.close()


def _produce(log: EmbeddedLog, n: int, poison_at: int) -> tuple[list[str], str]:
    events = [make_event(account_id="acme") for _ in range(n)]
    events[poison_at]["details"] = {"marker": MARK.decode()}
    with ActivityProducer(log) as producer:
        for e in events:
            producer.send(e)
    ids = [e["event_id"] for i, e in enumerate(events) if i != poison_at]
    return ids, events[poison_at]["event_id"]


def _records(log: EmbeddedLog, topic: str) -> list[Record]:
    reader = log.reader(topic)
    found = reader.poll(10_000, 0.1)
    reader.close()
    return found


def _router(
    log: EmbeddedLog, producer: Callable[[object], BrokerLike]
) -> tuple[Router, BrokerLike]:
    router = Router(log, batch_size=100)
    fake = producer(router._producer)
    router._producer = fake  # type: ignore[assignment]
    return router, fake


def test_refused_record_is_dead_lettered_and_the_rest_routed(log: EmbeddedLog) -> None:
    _ids, _poison = _produce(log, 10, poison_at=3)
    router, fake = _router(log, lambda inner: BrokerLike(inner, poisoned))
    try:
        assert router.step() == 10
        assert router.step() == 0
    finally:
        router.close()
    # Every record is named (all go to the same topics): halved until it is refused alone.
    assert fake.transactions <= 12
    for dest in ("a1", "a2"):
        copies = _records(log, topics.destination_topic(dest))
        assert [r.offset for r in copies] == list(range(9))
        assert all(MARK not in r.value for r in copies)
    (dead,) = _records(log, topics.DEAD_LETTERS)
    assert dead.header("dlq.reason") == b"too_large"
    assert dead.header("dlq.source.offset") == b"3"
    assert b"refused" in (dead.header("dlq.detail") or b"")
    assert MARK in dead.value  # small enough to keep whole
    assert log.committed_offsets(topics.ROUTER_GROUP, topics.ACTIVITY) == {
        TopicPartition(topics.ACTIVITY, 0): 10
    }


def test_dead_letter_refused_too_is_kept_without_its_body(log: EmbeddedLog) -> None:
    _produce(log, 4, poison_at=0)
    router, fake = _router(log, lambda inner: BrokerLike(inner, poisoned_everywhere))
    try:
        assert router.step() == 4
    finally:
        router.close()
    (dead,) = _records(log, topics.DEAD_LETTERS)
    assert dead.value == b""
    assert dead.header("dlq.reason") == b"too_large"
    assert int(dead.header("dlq.value.size") or b"0") > len(MARK)
    # The batch, its first half, it alone, its dead letter with the body.
    assert fake.refused == 4


def test_a_poison_record_in_a_large_batch_takes_a_logarithmic_number_of_transactions(
    log: EmbeddedLog,
) -> None:
    _produce(log, 256, poison_at=200)
    router = Router(log, batch_size=1000)
    fake = BrokerLike(router._producer, poisoned)
    router._producer = fake  # type: ignore[assignment]
    try:
        assert router.step() == 256
    finally:
        router.close()
    assert fake.transactions <= 2 * 8 + 3
    assert len(_records(log, topics.DEAD_LETTERS)) == 1
    assert len(_records(log, topics.destination_topic("a2"))) == 255


def test_a_dead_letter_topic_refusing_everything_stops_the_router_with_the_reason(
    log: EmbeddedLog,
) -> None:
    _produce(log, 5, poison_at=2)

    def refuse(r: OutgoingRecord) -> str | None:
        return "not_authorized" if MARK in r.value or r.topic == topics.DEAD_LETTERS else None

    router, fake = _router(log, lambda inner: BrokerLike(inner, refuse))
    try:
        with pytest.raises(LogError, match=r"auditstream\.dlq"):
            router.step()
    finally:
        router.close()
    assert fake.transactions <= 8
    # The records before it were committed; it and what follows are read again next time.
    assert log.committed_offsets(topics.ROUTER_GROUP, topics.ACTIVITY) == {
        TopicPartition(topics.ACTIVITY, 0): 2
    }


def test_a_refusal_that_may_pass_is_retried_a_few_times_then_dead_lettered(
    log: EmbeddedLog,
) -> None:
    _produce(log, 6, poison_at=4)
    router, _fake = _router(log, lambda inner: BrokerLike(inner, poisoned, permanent=False))
    try:
        done = [router.step() for _ in range(MAX_REFUSALS + 1)]
    finally:
        router.close()
    assert done[: MAX_REFUSALS - 1] == [0] * (MAX_REFUSALS - 1)
    assert sum(done) == 6
    (dead,) = _records(log, topics.DEAD_LETTERS)
    assert dead.header("dlq.source.offset") == b"4"
    assert len(_records(log, topics.destination_topic("a1"))) == 5


def test_a_refusal_naming_no_record_rewinds_and_retries(log: EmbeddedLog) -> None:
    _produce(log, 3, poison_at=1)
    router = Router(log)
    inner = router._producer
    calls = 0

    class Once:
        def produce_and_commit(self, *args: object) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RecordRefused([Refusal(99, "too_large", "?", permanent=True)])
            inner.produce_and_commit(*args)  # type: ignore[arg-type]

        def close(self) -> None:
            inner.close()

    router._producer = Once()  # type: ignore[assignment]
    try:
        assert router.step() == 0
        assert router.step() == 3
    finally:
        router.close()
    assert _records(log, topics.DEAD_LETTERS) == []


def test_embedded_log_refuses_a_record_over_its_limit(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "small.sqlite", max_record_bytes=1000)
    log.create_topic("t")
    producer = log.producer()
    with pytest.raises(RecordRefused) as caught:
        producer.produce(OutgoingRecord("t", b"x" * 1000))
    assert caught.value.refusals[0].reason == "too_large"
    producer.produce(OutgoingRecord("t", b"x" * 100))
    producer.close()
    tx = log.transactional_producer("t")
    with pytest.raises(RecordRefused) as caught:
        tx.produce_atomically([OutgoingRecord("t", b"ok"), OutgoingRecord("t", b"x" * 5000)])
    assert [r.index for r in caught.value.refusals] == [1]
    assert log.end_offsets("t") == {TopicPartition("t", 0): 1}  # nothing of the refused batch
    log.close()
