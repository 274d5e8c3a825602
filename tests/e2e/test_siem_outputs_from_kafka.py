"""From Kafka to each SIEM collector emulator (Splunk HEC, Datadog Logs, Azure Monitor Logs):
10,000 events through a real broker, a router process and a sink-worker process, with the
collector down for 20 s in the middle. Every event arrives; an event arrives twice only inside
a whole request sent again (at-least-once: the batch is retried whole)."""

from __future__ import annotations

import tempfile
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
from auditstream.sinks.azure_monitor_logs import AUTHORITY_CA_FILE_ENV, AUTHORITY_HOST_ENV
from devservices.azure_monitor_receiver import AzureMonitorReceiver, local_tls
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
AZURE_TENANT = "5d1f0c3e-7a2b-4c8d-9e6f-0a1b2c3d4e5f"
AZURE_CLIENT = "0f9e8d7c-6b5a-4d3c-8b2a-1f0e9d8c7b6a"
AZURE_SECRET = "e2e~client.secret"
AZURE_DCR = "dcr-00112233445566778899aabbccddeeff"

Output = tuple[CollectorServer, list[dict[str, Any]], dict[str, str]]
"""A started emulator, the destinations of the two accounts, the sink worker's environment."""


def _splunk() -> Output:
    receiver = SplunkHecReceiver(TOKEN, indexes=("main", "audit"))
    receiver.add_token(ACK_TOKEN, indexes=("audit",), ack=True)
    receiver.start()
    common = {"type": "splunk_hec", "url": receiver.url, "batch": BATCH, "index": "audit"}
    return (
        receiver,
        [
            {**common, "id": "a-splunk", "token": TOKEN},
            {**common, "id": "b-splunk", "token": ACK_TOKEN, "ack": True, "gzip": False},
        ],
        {},
    )


def _datadog() -> Output:
    receiver = DatadogReceiver([KEY]).start()
    common = {"type": "datadog_logs", "endpoint": receiver.url, "api_key": KEY, "batch": BATCH}
    return (
        receiver,
        [
            {**common, "id": "a-datadog"},
            {**common, "id": "b-datadog", "gzip": False, "tags": "env:e2e"},
        ],
        {},
    )


def _azure() -> Output:
    tls = local_tls(Path(tempfile.mkdtemp(prefix="azure-tls-")))
    receiver = AzureMonitorReceiver(
        tenant_id=AZURE_TENANT,
        client_id=AZURE_CLIENT,
        client_secret=AZURE_SECRET,
        dcr_id=AZURE_DCR,
        tls=tls.server,
    ).start()
    common = {
        "type": "azure_monitor_logs",
        "endpoint": receiver.base_url,
        "dcr_immutable_id": AZURE_DCR,
        "stream_name": "Custom-AuditStream_CL",
        "tenant_id": AZURE_TENANT,
        "client_id": AZURE_CLIENT,
        "client_secret": AZURE_SECRET,
        "ca_file": str(tls.ca_file),
        "batch": BATCH,
    }
    operator = {  # the sink workers' own setting: the emulator is the Entra ID authority
        AUTHORITY_HOST_ENV: receiver.base_url,
        AUTHORITY_CA_FILE_ENV: str(tls.ca_file),
    }
    return (
        receiver,
        [{**common, "id": "a-azure"}, {**common, "id": "b-azure", "gzip": False}],
        operator,
    )


OUTPUTS: dict[str, Callable[[], Output]] = {
    "splunk_hec": _splunk,
    "datadog_logs": _datadog,
    "azure_monitor_logs": _azure,
}


def _deliveries(receiver: CollectorServer) -> list[tuple[str, ...]]:
    assert isinstance(receiver, SplunkHecReceiver | DatadogReceiver | AzureMonitorReceiver)
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
    receiver, destinations, worker_env = OUTPUTS[output]()
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
                env=worker_env,
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
