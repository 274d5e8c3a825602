"""The three-node test cluster itself: topics are replicated three times, the controller
can be crashed and a new one takes over (restarts: the brokers scenario of test_no_event_lost)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from auditstream.pipeline import topics
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import OutgoingRecord
from auditstream.pipeline.produce_all import produce_all
from auditstream.pipeline.topic_setup import ensure_core_topics
from devservices.kafka_cluster import KafkaCluster

pytestmark = pytest.mark.reliability


def _replicas(log: KafkaLog, topic: str) -> list[tuple[int, int]]:
    """(replicas, in-sync replicas) per partition, once the metadata shows the topic."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": log.bootstrap})
    try:
        deadline = time.monotonic() + 30
        while True:
            meta = admin.list_topics(topic, timeout=10).topics[topic]
            if meta.partitions or time.monotonic() > deadline:
                return [(len(p.replicas), len(p.isrs)) for p in meta.partitions.values()]
            time.sleep(0.2)
    finally:
        del admin


def _setup(step: Callable[[], None], attempts: int = 3) -> None:
    """Run ``step``, again after a ``LogError``. A client given a three-address bootstrap list
    drops those connections once it has learnt the brokers; an admin request in flight on one
    of them fails with _DESTROY_BROKER (the cluster is fine: reported, see bench/README.md)."""
    for attempt in range(attempts):
        try:
            step()
            return
        except LogError:
            if attempt == attempts - 1:
                raise


def test_topics_have_three_replicas_and_take_a_new_controller_when_it_crashes(
    kafka_cluster: KafkaCluster,
) -> None:
    assert len(kafka_cluster.bootstrap.split(",")) == 3
    log = KafkaLog(kafka_cluster.bootstrap)
    try:
        _setup(lambda: ensure_core_topics(log))  # replication factor -1: the default applies
        assert _replicas(log, topics.ACTIVITY) == [(3, 3)]
        assert _replicas(log, topics.DEAD_LETTERS) == [(3, 3)]

        first = kafka_cluster.controller()
        kafka_cluster.kill9(first)
        assert not kafka_cluster.alive(first)
        second = kafka_cluster.controller()
        assert second != first
        # Two of three replicas are enough for acks=all with min.insync.replicas=2.
        record = OutgoingRecord(topic=topics.DEAD_LETTERS, value=b"x", key=b"k")
        assert produce_all(log, [record], what="probe", timeout=60.0) == 1

        # Restarting a node (and the controller) is part of the brokers fault scenario.
    finally:
        log.close()
