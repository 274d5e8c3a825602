"""Shared fixtures: a real Kafka broker per test that asks for one, and the embedded log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log
from devservices.kafka import KafkaBroker


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A fresh single-node broker on 127.0.0.1 (about 3 s to start): tests share no topics."""
    with KafkaBroker.start(tmp_path / "kafka") as broker:
        yield broker


@pytest.fixture
def embedded_log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "log.sqlite")
    yield log
    log.close()


@pytest.fixture(params=["embedded", "kafka"])
def any_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """The test runs once on each backend: the embedded log and a real Kafka broker."""
    if request.param == "embedded":
        log: Log = EmbeddedLog(tmp_path / "log.sqlite")
        yield log
        log.close()
        return
    with KafkaBroker.start(tmp_path / "kafka") as broker:
        log = KafkaLog(broker.bootstrap)
        yield log
        log.close()
