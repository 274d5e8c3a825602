"""Closing Kafka clients releases them: a client that is only flushed keeps its threads
connecting to the brokers until garbage collected. No broker needed: nothing is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from auditstream.pipeline.errors import LogError
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord

NOWHERE = "127.0.0.1:1"  # nothing listens: no client ever connects


@pytest.fixture
def log() -> Iterator[KafkaLog]:
    kafka = KafkaLog(NOWHERE, {"log_level": 0})
    yield kafka
    kafka.close()


def test_a_closed_producer_refuses_records_and_closes_once(log: KafkaLog) -> None:
    producer = log.producer()
    producer.close()
    producer.close()
    with pytest.raises(LogError, match="closed"):
        producer.produce(OutgoingRecord("t", b"x"))
    with pytest.raises(LogError, match="closed"):
        producer.flush()


@pytest.mark.parametrize(
    "make_client",
    [
        lambda log: log.producer(),
        lambda log: log.consumer("g", ["t"]),
        lambda log: log.list_topics(),
        lambda log: log.create_topic("t"),
    ],
)
def test_a_closed_log_makes_no_new_client(
    log: KafkaLog, make_client: Callable[[KafkaLog], object]
) -> None:
    log.close()
    with pytest.raises(LogError, match="closed"):
        make_client(log)
