"""A fresh three-node Kafka cluster for each reliability test that asks for one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devservices.kafka_cluster import KafkaCluster


@pytest.fixture
def kafka_cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    """Three KRaft nodes (broker and controller each) on 127.0.0.1, replication factor 3 and
    ``min.insync.replicas=2`` by default; every node stopped by its PID afterwards."""
    with KafkaCluster.start(tmp_path / "kafka") as cluster:
        yield cluster
