"""From Kafka to each SIEM collector emulator (Splunk HEC, Datadog Logs): 10,000 events through
a real broker, a router process and a sink-worker process, with the collector down for 20 s
in the middle. Every event arrives; an event arrives twice only inside a whole request sent
again (at-least-once: the batch is retried whole)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas.event import ActivityEvent
from devservices.collector_server import CollectorServer
from devservices.datadog_receiver import DatadogReceiver
from devservices.kafka import KafkaBroker
from devservices.processes import ProjectProcess
from devservices.splunk_hec_receiver import SplunkHecReceiver
from tests.e2e.harness import expected_ids

TOKEN = "2b7e151a-628a-4ed2-a6ab-f7158809cf4f"
ACK_TOKEN = "3c8f262b-739b-4fe3-b7bc-08269910d050"
KEY = "9f86d081884c7d659a2feaa0c55ad015"
ACCOUNTS = ["acct-a", "acct-b"]
EVENTS = 10_000
OUTAGE_S = 20.0
BATCH = {"max_events": 500, "max_age_s": 0.5}


def _splunk() -> tuple[CollectorServer, list[dict[str, Any]]]:
    receiver = SplunkHecReceiver(TOKEN, indexes=("main", "audit"))
    receiver.add_token(ACK_TOKEN, indexes=("audit",), ack=True)
    receiver.start()
    common = {"type": "splunk_hec", "url": receiver.url, "batch": BATCH, "index": "audit"}
    return receiver, [
        {**common, "id": "a-splunk", "token": TOKEN},
        {**common, "id": "b-splunk", "token": ACK_TOKEN, "ack": True, "gzip": False},
    ]


def _datadog() -> tuple[CollectorServer, list[dict[str, Any]]]:
    receiver = DatadogReceiver([KEY]).start()
    common = {"type": "datadog_logs", "endpoint": receiver.url, "api_key": KEY, "batch": BATCH}
    return receiver, [
        {**common, "id": "a-datadog"},
        {**common, "id": "b-datadog", "gzip": False, "tags": "env:e2e"},
    ]


OUTPUTS: dict[str, Callable[[], tuple[CollectorServer, list[dict[str, Any]]]]] = {
    "splunk_hec": _splunk,
    "datadog_logs": _datadog,
}


def _deliveries(receiver: CollectorServer) -> list[tuple[str, ...]]:
    assert isinstance(receiver, SplunkHecReceiver | DatadogReceiver)
    with receiver.lock:
        return list(receiver.deliveries)


def _received(receiver: CollectorServer) -> set[str]:
    return {i for d in _deliveries(receiver) for i in d}


def _produce(log: KafkaLog, events: list[ActivityEvent]) -> None:
    with ActivityProducer(log) as producer:
        for event in events:
            producer.send(event)


def _assert_repeats_are_whole_requests(deliveries: list[tuple[str, ...]]) -> int:
    """Raises unless every event seen twice came in a request equal to an earlier one; the
    number of repeated requests."""
    requests: set[tuple[str, ...]] = set()
    seen: set[str] = set()
    repeats = 0
    for delivery in deliveries:
        if delivery in requests:
            repeats += 1
            continue
        again = seen & set(delivery)
        assert not again, f"{len(again)} events repeated outside a whole-request repeat"
        requests.add(delivery)
        seen.update(delivery)
    return repeats


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_ten_thousand_events_through_a_collector_outage(
    output: str, tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    receiver, destinations = OUTPUTS[output]()
    log = KafkaLog(kafka_broker.bootstrap)
    backend = ["--bootstrap", kafka_broker.bootstrap]
    try:
        accounts = [
            AccountSettings.model_validate({"account_id": acct, "destinations": [dest]})
            for acct, dest in zip(ACCOUNTS, destinations, strict=True)
        ]
        publish_settings(log, accounts)
        events = list(Simulator(SimulatorConfig(accounts=ACCOUNTS, seed=21)).events(EVENTS))
        expected = expected_ids(events, accounts)
        total = set().union(*expected.values())
        with (
            ProjectProcess(["router", *backend], tmp_path / "router.log") as router,
            ProjectProcess(
                ["sink-worker", *backend, "--allow-network", "127.0.0.1/32"],
                tmp_path / "worker.log",
            ) as worker,
        ):
            _produce(log, events[:3_000])
            deadline = time.monotonic() + 120
            while len(_received(receiver)) < 1_000:
                assert time.monotonic() < deadline, worker.output()[-3000:]
                assert worker.alive(), worker.output()[-3000:]
                time.sleep(0.2)

            receiver.stop()  # the collector goes down, open connections cut
            down_at = time.monotonic()
            before = len(_deliveries(receiver))
            _produce(log, events[3_000:])
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            assert len(_deliveries(receiver)) == before
            receiver.restart()

            deadline = time.monotonic() + 240
            while not total <= _received(receiver):
                assert time.monotonic() < deadline, (
                    f"{len(total - _received(receiver))} events missing\n" + worker.output()[-3000:]
                )
                assert worker.alive(), worker.output()[-3000:]
                assert router.alive(), router.output()[-3000:]
                time.sleep(0.5)
            time.sleep(2)  # anything still in flight lands before the checks
        deliveries = _deliveries(receiver)
        assert _received(receiver) == total
        _assert_repeats_are_whole_requests(deliveries)
        by_destination = {d["id"]: expected[d["id"]] for d in destinations}
        for delivery in deliveries:  # one request holds one destination's events
            assert any(set(delivery) <= ids for ids in by_destination.values())
    finally:
        receiver.stop()
        log.close()
