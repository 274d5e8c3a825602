"""A Kafka broker that does not answer is one clear error, and librdkafka's complaints go
through Python logging, once each. No broker needed: nothing listens on the port."""

from __future__ import annotations

import logging
import time

import pytest

from auditstream.pipeline.errors import BrokerUnreachable, LogError
from auditstream.pipeline.kafka_log import KafkaLog

NOWHERE = "127.0.0.1:1"  # nothing listens: every connection is refused


def test_broker_unreachable_names_address_cause_and_hint() -> None:
    error = BrokerUnreachable("127.0.0.1:9092", 10.0, "Connection refused", "start one")
    assert isinstance(error, LogError)
    assert str(error) == (
        "no Kafka broker answers at 127.0.0.1:9092 within 10 s (Connection refused): start one"
    )
    assert "()" not in str(BrokerUnreachable("h:1", 2.5, None, "x"))


def test_wait_for_broker_fails_with_the_cause(capfd: pytest.CaptureFixture[str]) -> None:
    log = KafkaLog(NOWHERE)
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnreachable) as caught:
            log.wait_for_broker(1.0, hint="start a broker")
    finally:
        log.close()
    assert time.monotonic() - started < 20  # bounded, not a speed claim
    message = str(caught.value)
    assert message.startswith(f"no Kafka broker answers at {NOWHERE} within 1 s (")
    assert "Connection refused" in message
    assert message.endswith(": start a broker")
    assert "\n" not in message
    assert capfd.readouterr().err == ""  # librdkafka printed nothing by itself


def test_client_complaints_reach_python_logging_once(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="auditstream.kafka")
    log = KafkaLog(NOWHERE)
    try:
        consumer = log.consumer("g", ["t"])
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # about 40 refused connections
            consumer.poll(10, 0.2)
        consumer.close()
    finally:
        log.close()
    refused = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert refused[0].levelno == logging.ERROR
    assert refused[0].name == "auditstream.kafka"
    assert "rdkafka" not in capfd.readouterr().err
