"""A destination added while the router and a sink worker run receives its events: the worker's
pattern subscription finds the new destination topic on a metadata refresh (seconds), not at
librdkafka's default of five minutes. Real broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.kafka import KafkaBroker
from tests.e2e.harness import local_event_ids
from tests.factories import make_event

BOUND_S = 90.0
"""Well under librdkafka's default metadata refresh (300 s), far above the 2 s configured."""


def _settings(*dest_ids: str) -> AccountSettings:
    return AccountSettings.model_validate(
        {
            "account_id": "acme",
            "destinations": [
                {"id": d, "type": "local", "path": d, "batch": {"max_events": 10, "max_age_s": 0.2}}
                for d in dest_ids
            ],
        }
    )


def _send(log: KafkaLog, n: int) -> set[str]:
    ids = set()
    with ActivityProducer(log) as producer:
        for _ in range(n):
            event = make_event(account_id="acme")
            producer.send(event)
            ids.add(str(event["event_id"]))
    return ids


def test_a_destination_added_while_running_receives_its_events(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    log = KafkaLog(kafka_broker.bootstrap)
    publish_settings(log, [_settings("acme-one")])
    router = Router(log, poll_timeout=0.05)
    worker = SinkWorker(log, local_root=out, options=WorkerOptions(poll_timeout=0.05))

    def run_until(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + BOUND_S
        while not done():
            assert time.monotonic() < deadline, f"{what} not within {BOUND_S:.0f} s"
            router.step()
            worker.step()

    try:
        first = _send(log, 5)
        run_until(lambda: set(local_event_ids(out / "acme-one")) >= first, "acme-one")
        publish_settings(log, [_settings("acme-one", "acme-two")])  # creates acme-two's topic
        second = _send(log, 5)
        run_until(lambda: set(local_event_ids(out / "acme-two")) >= second, "acme-two")
        assert set(local_event_ids(out / "acme-two")) == second
    finally:
        worker.close()
        router.close()
        log.close()
