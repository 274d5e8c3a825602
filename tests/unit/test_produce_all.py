"""Producing a few records and waiting until all are stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import DeliveryCallback, OutgoingRecord
from auditstream.pipeline.produce_all import produce_all

TOPIC = "auditstream.test"


@dataclass
class FakeProducer:
    """Reports ``refusals`` (by value) as not stored and leaves ``undelivered`` in flight."""

    refusals: dict[bytes, str] = field(default_factory=dict)
    undelivered: int = 0
    closed: bool = False

    def produce(self, record: OutgoingRecord, on_delivery: DeliveryCallback | None = None) -> None:
        if on_delivery is not None:
            reason = self.refusals.get(record.value)
            on_delivery(LogError(reason) if reason else None, record)

    def flush(self, timeout: float = 30.0) -> int:
        return self.undelivered

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeLog:
    producer_: FakeProducer

    def producer(self) -> FakeProducer:
        return self.producer_


def test_stores_every_record(embedded_log: EmbeddedLog) -> None:
    embedded_log.create_topic(TOPIC)
    records = [OutgoingRecord(TOPIC, v, key=b"k") for v in (b"a", b"b", b"c")]
    assert produce_all(embedded_log, records) == 3
    reader = embedded_log.reader(TOPIC)
    assert [r.value for r in reader.poll(10, 0.0)] == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    ("producer", "message"),
    [
        (FakeProducer(refusals={b"b": "disk full"}), "token not stored: disk full"),
        (FakeProducer(undelivered=1), "token not stored: flush timed out"),
    ],
)
def test_raises_unless_every_record_is_stored(producer: FakeProducer, message: str) -> None:
    records = [OutgoingRecord(TOPIC, v) for v in (b"a", b"b")]
    with pytest.raises(LogError, match=message):
        produce_all(FakeLog(producer), records, what="token")  # type: ignore[arg-type]
    assert producer.closed


def test_closes_the_producer_when_a_record_cannot_be_made() -> None:
    producer = FakeProducer()

    def records() -> Iterator[OutgoingRecord]:
        yield OutgoingRecord(TOPIC, b"a")
        raise ValueError("bad settings")

    with pytest.raises(ValueError, match="bad settings"):
        produce_all(FakeLog(producer), records())  # type: ignore[arg-type]
    assert producer.closed
