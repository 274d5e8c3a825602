"""Readiness from what a loop reports, on a fake clock; the health server's three paths."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.health_server import HealthServer, ProcessHealth
from auditstream.pipeline.readiness import Readiness


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ready_once_connected_polled_and_progressed() -> None:
    clock = FakeClock()
    readiness = Readiness(30, clock=clock)
    verdict = readiness.verdict()
    assert not verdict.ready
    assert verdict.reasons == ("not connected to the log yet", "not polled yet", "no progress yet")
    readiness.connected()
    readiness.polled(assigned=3)
    readiness.progressed()
    verdict = readiness.verdict()
    assert verdict.ready, verdict.reasons
    assert verdict.as_json() == {
        "ready": True,
        "reasons": [],
        "connected": True,
        "assigned_partitions": 3,
        "seconds_since_poll": 0.0,
        "seconds_since_progress": 0.0,
    }


def test_not_ready_when_the_last_poll_or_progress_is_stale() -> None:
    clock = FakeClock()
    readiness = Readiness(30, clock=clock)
    readiness.connected()
    readiness.polled(assigned=1)
    readiness.progressed()
    clock.now += 20
    readiness.polled(assigned=1)
    clock.now += 15  # poll 15 s ago, progress 35 s ago
    verdict = readiness.verdict()
    assert not verdict.ready
    assert verdict.reasons == ("last progress 35 s ago (limit 30 s)",)
    clock.now += 20
    assert readiness.verdict().reasons == (
        "last poll 35 s ago (limit 30 s)",
        "last progress 55 s ago (limit 30 s)",
    )
    readiness.polled(assigned=1)
    readiness.progressed()
    assert readiness.verdict().ready


def test_progress_from_a_watchdog_and_a_stop_request() -> None:
    clock = FakeClock()
    readiness = Readiness(10, clock=clock)
    readiness.connected()
    readiness.polled()
    idle = [0.0]
    stopping = [False]
    readiness.follow_progress(lambda: idle[0])
    readiness.follow_stop(lambda: stopping[0])
    assert readiness.verdict().ready
    idle[0] = 12.0
    assert readiness.verdict().reasons == ("last progress 12 s ago (limit 10 s)",)
    idle[0] = 0.0
    stopping[0] = True
    assert readiness.verdict().reasons == ("stopping",)


def test_assignment_is_needed_only_when_asked_for() -> None:
    clock = FakeClock()
    for required in (False, True):
        readiness = Readiness(10, clock=clock, require_assignment=required)
        readiness.connected()
        readiness.polled(assigned=0)
        readiness.progressed()
        assert readiness.verdict().ready is not required


def test_a_server_process_is_ready_once_connected() -> None:
    readiness = Readiness(10, clock=FakeClock(), loop=False)
    assert readiness.verdict().reasons == ("not connected to the log yet",)
    readiness.connected()
    assert readiness.verdict().ready


def test_polls_of_the_observed_group_are_reported(embedded_log: EmbeddedLog) -> None:
    health = ProcessHealth("127.0.0.1", None, 30)
    log = health.observe(embedded_log, "group-a", poll_is_progress=True)
    embedded_log.create_topic("t")
    other = log.consumer("group-b", ["t"])
    other.poll(10, 0)
    assert health.readiness.verdict().reasons == ("not polled yet", "no progress yet")
    consumer = log.consumer("group-a", ["t"])
    consumer.poll(10, 0)
    verdict = health.readiness.verdict()
    assert verdict.ready, verdict.reasons
    assert verdict.details["assigned_partitions"] == 1
    consumer.close()
    other.close()
    health.close()


def _get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a test URL)
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("auditstream_test_things", "Things.", registry=registry).inc(2)
    return registry


def test_the_server_serves_metrics_health_and_readiness(registry: CollectorRegistry) -> None:
    clock = FakeClock()
    readiness = Readiness(30, clock=clock)
    with HealthServer("127.0.0.1", 0, readiness, registry=registry) as server:
        base = f"http://127.0.0.1:{server.port}"
        status, content_type, body = _get(f"{base}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain")
        assert "auditstream_test_things_total 2.0" in body
        assert _get(f"{base}/healthz")[0] == 200
        status, content_type, body = _get(f"{base}/readyz")
        assert (status, content_type) == (503, "application/json")
        answer: dict[str, Any] = json.loads(body)
        assert answer["ready"] is False
        assert "not connected to the log yet" in answer["reasons"]
        readiness.connected()
        readiness.polled(2)
        readiness.progressed()
        status, _, body = _get(f"{base}/readyz")
        assert status == 200
        assert json.loads(body)["assigned_partitions"] == 2
        assert _get(f"{base}/nothing")[0] == 404
    server.close()  # a second close does nothing


def test_a_transaction_gets_the_logs_own_consumer(embedded_log: EmbeddedLog) -> None:
    """A Kafka transaction commits offsets with the consumer's group metadata: the producer
    must be handed the log's consumer, not the observing wrapper."""
    seen: list[object] = []

    class Recording:
        def produce_and_commit(self, records: object, consumer: object, offsets: object) -> None:
            seen.append(consumer)

    health = ProcessHealth("127.0.0.1", None, 30)
    log = health.observe(embedded_log, "group-a", poll_is_progress=False)
    embedded_log.create_topic("t")
    consumer = log.consumer("group-a", ["t"])
    inner = consumer._inner  # type: ignore[attr-defined]
    embedded_log.transactional_producer = lambda _id: Recording()  # type: ignore[method-assign,assignment,return-value]
    log.transactional_producer("tx").produce_and_commit([], consumer, {})
    assert seen == [inner]
    consumer.close()
