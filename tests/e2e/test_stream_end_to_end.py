"""The whole stream, on both backends: 20,000 simulated events over five accounts with
different settings; every destination receives exactly the events its settings include."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas.event import ActivityEvent
from auditstream.sinks.worker import SinkWorker
from devservices.kafka import KafkaBroker
from devservices.processes import ProjectProcess
from devservices.webhook_receiver import WebhookReceiver
from tests.e2e.harness import ACCOUNTS, SECRET, expected_ids, five_accounts, local_event_ids

EVENTS = 20_000


def _produce(log: Log, count: int, seed: int = 11) -> list[ActivityEvent]:
    events = list(Simulator(SimulatorConfig(accounts=ACCOUNTS, seed=seed)).events(count))
    with ActivityProducer(log) as producer:
        for e in events:
            producer.send(e)
    return events


def _delivered(
    out: Path, receiver: WebhookReceiver, accounts: list[AccountSettings]
) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for a in accounts:
        for d in a.destinations:
            if d.type == "webhook":
                got[d.id] = sorted(receiver.unique_event_ids())
            else:
                got[d.id] = local_event_ids(out / d.id)
    return got


def _complete(got: dict[str, list[str]], expected: dict[str, set[str]]) -> bool:
    return all(len(set(got[d])) >= len(ids) for d, ids in expected.items())


def assert_exact(got: dict[str, list[str]], expected: dict[str, set[str]]) -> None:
    for dest, ids in expected.items():
        dupes = [i for i, n in Counter(got[dest]).items() if n > 1]
        assert not dupes, f"{dest}: {len(dupes)} events stored more than once"
        assert set(got[dest]) == ids, (
            f"{dest}: missing {len(ids - set(got[dest]))}, extra {len(set(got[dest]) - ids)}"
        )


def _check_settings_shape(expected: dict[str, set[str]]) -> None:
    # The scenario means something only if each kind of account really had traffic.
    assert expected["off-local"] == set()
    assert expected["two-local"] == expected["two-hook"]
    for dest in ("two-local", "all-local", "cats-local", "excl-local"):
        assert expected[dest], dest


def test_end_to_end_embedded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with WebhookReceiver(SECRET.encode()) as receiver:
        accounts = five_accounts(receiver.url)
        log = EmbeddedLog(tmp_path / "log.sqlite")
        publish_settings(log, accounts)
        router = Router(log)
        worker = SinkWorker(log, local_root=out)
        events = _produce(log, EVENTS)
        expected = expected_ids(events, accounts)
        _check_settings_shape(expected)

        deadline = time.monotonic() + 300
        got = _delivered(out, receiver, accounts)
        while not _complete(got, expected) and time.monotonic() < deadline:
            for _ in range(20):
                router.step()
                worker.step()
            got = _delivered(out, receiver, accounts)
        worker.drain()
        got = _delivered(out, receiver, accounts)
        worker.close()
        router.close()
        assert_exact(got, expected)
        assert receiver.bad_signatures == 0
        assert receiver.duplicate_deliveries == 0


@pytest.mark.kafka
def test_end_to_end_kafka_with_sink_worker_crash(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    """Router and sink worker as separate processes on a real broker; the sink worker is
    killed with SIGKILL in the middle of the run and restarted: still exact and complete."""
    out = tmp_path / "out"
    backend = ["--bootstrap", kafka_broker.bootstrap]
    with WebhookReceiver(SECRET.encode()) as receiver:
        accounts = five_accounts(receiver.url)
        log = KafkaLog(kafka_broker.bootstrap)
        publish_settings(log, accounts)
        events = _produce(log, EVENTS)
        expected = expected_ids(events, accounts)
        _check_settings_shape(expected)
        total = sum(len(v) for v in expected.values())

        router = ProjectProcess(["router", *backend], tmp_path / "router.log")
        worker = ProjectProcess(
            ["sink-worker", *backend, "--local-root", str(out), "--allow-network", "127.0.0.1/32"],
            tmp_path / "worker-1.log",
        )
        try:
            # Crash the worker once part of the stream is stored, then start a new one.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                stored = sum(len(v) for v in _delivered(out, receiver, accounts).values())
                if stored >= total // 4:
                    break
                assert worker.alive(), worker.output()[-3000:]
                time.sleep(0.2)
            worker.kill9()
            worker = ProjectProcess(
                [
                    "sink-worker",
                    *backend,
                    "--local-root",
                    str(out),
                    "--allow-network",
                    "127.0.0.1/32",
                ],
                tmp_path / "worker-2.log",
            )
            deadline = time.monotonic() + 300
            got = _delivered(out, receiver, accounts)
            while not _complete(got, expected) and time.monotonic() < deadline:
                assert router.alive(), router.output()[-3000:]
                assert worker.alive(), worker.output()[-3000:]
                time.sleep(1)
                got = _delivered(out, receiver, accounts)
            time.sleep(2)  # anything extra would arrive now
            got = _delivered(out, receiver, accounts)
        finally:
            worker.stop()
            router.stop()
            log.close()
        assert_exact(got, expected)
        assert receiver.bad_signatures == 0
