"""From Kafka to each object store emulator: every event exactly once, in the key layout,
in files that decode; a crash between put and commit; an outage of 20 s."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from auditstream.config.stream import AccountSettings
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.pipeline.log import Log
from auditstream.pipeline.router import Router
from auditstream.pipeline.settings_writer import publish_settings
from auditstream.producers.sdk import ActivityProducer
from auditstream.producers.simulator import Simulator, SimulatorConfig
from auditstream.schemas.event import ActivityEvent
from auditstream.sinks.health import State
from auditstream.sinks.retry import RetryPolicy
from auditstream.sinks.worker import SinkWorker, WorkerOptions
from devservices.kafka import KafkaBroker
from devservices.object_stores import Store, start_store
from devservices.processes import ProjectProcess
from devservices.stored_objects import decode_object
from tests.e2e.harness import expected_ids

KEY = re.compile(
    r"^(?P<prefix>[a-z-]+)/account=(?P<account>[a-z0-9-]+)/date=\d{4}-\d{2}-\d{2}/"
    r"(?P<partition>\d{3})-(?P<offset>\d{20})\.(?P<ext>ndjson\.gz|ndjson\.zst|avro)$"
)
ACCOUNTS = ["acct-a", "acct-b", "acct-c"]


def _settings(store: Store) -> list[AccountSettings]:
    batch = {"max_events": 400, "max_age_s": 0.5}
    formats = [
        {"format": "ndjson", "compression": "gzip"},
        {"format": "avro", "compression": "deflate"},
        {"format": "ndjson", "compression": "zstd"},
    ]
    return [
        AccountSettings.model_validate(
            {
                "account_id": acct,
                "destinations": [
                    store.destination(
                        f"{acct}-{store.kind.replace('_', '-')}",
                        prefix=f"p-{acct}",
                        batch=batch,
                        **fmt,
                    )
                ],
            }
        )
        for acct, fmt in zip(ACCOUNTS, formats, strict=True)
    ]


def _produce(log: Log, count: int, seed: int) -> list[ActivityEvent]:
    events = list(Simulator(SimulatorConfig(accounts=ACCOUNTS, seed=seed)).events(count))
    with ActivityProducer(log) as producer:
        for e in events:
            producer.send(e)
    return events


def _stored(store: Store) -> tuple[dict[str, list[str]], list[str]]:
    """Event ids per account, and every key, read back with the official SDK."""
    per_account: dict[str, list[str]] = {a: [] for a in ACCOUNTS}
    keys = []
    for key, data in store.objects().items():
        if "/_auditstream_check/" in key:
            continue
        keys.append(key)
        match = KEY.match(key)
        assert match, f"object key {key!r} does not follow the layout"
        for event in decode_object(key, data):
            assert event["account_id"] == match["account"]
            per_account[match["account"]].append(str(event["event_id"]))
    return per_account, keys


def _assert_exact(
    store: Store, events: list[ActivityEvent], accounts: list[AccountSettings]
) -> list[str]:
    expected = expected_ids(events, accounts)
    got, keys = _stored(store)
    for a in accounts:
        (dest,) = a.destinations
        ids = got[a.account_id]
        dupes = [i for i, n in Counter(ids).items() if n > 1]
        assert not dupes, f"{dest.id}: {len(dupes)} events stored twice"
        assert set(ids) == expected[dest.id], f"{dest.id}: stored set differs"
    return keys


def _run_until_stored(router: Router, worker: SinkWorker, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        router.step()
        worker.step()
        if sum(h.delivered_events for h in worker.health.values()) >= total:
            return
    raise AssertionError(f"not every event delivered in {timeout}s: {worker.health}")


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure_blob"])
def test_ten_thousand_events_land_exactly_once(
    kind: str, tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    store = start_store(kind, tmp_path / kind)
    log = KafkaLog(kafka_broker.bootstrap)
    try:
        accounts = _settings(store)
        publish_settings(log, accounts)
        router, worker = Router(log), SinkWorker(log)
        events = _produce(log, 10_000, seed=5)
        _run_until_stored(router, worker, len(events), timeout=240)
        worker.drain()
        keys = _assert_exact(store, events, accounts)
        assert any(k.endswith(".avro") for k in keys)
        assert any(k.endswith(".ndjson.gz") for k in keys)
        worker.close()
        router.close()
    finally:
        store.stop()
        log.close()


def test_crash_between_put_and_commit_stores_nothing_twice(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    """The worker process dies right after its third object is stored, before the offset
    commit; the restarted worker rewrites that object under the same key."""
    store = start_store("s3", tmp_path / "s3")
    log = KafkaLog(kafka_broker.bootstrap)
    backend = ["--bootstrap", kafka_broker.bootstrap]
    emulator = ["--allow-network", "127.0.0.1/32"]  # the store's emulator is on loopback
    try:
        accounts = _settings(store)
        publish_settings(log, accounts)
        events = _produce(log, 6_000, seed=8)
        with ProjectProcess(["router", *backend], tmp_path / "router.log"):
            crashing = ProjectProcess(
                ["sink-worker", *backend, *emulator],
                tmp_path / "worker-1.log",
                env={"AUDITSTREAM_FAULT_EXIT_AFTER_WRITES": "3"},
            )
            assert crashing.proc.wait(120) == 86, crashing.output()[-3000:]
            assert len(store.objects()) == 3
            with ProjectProcess(
                ["sink-worker", *backend, *emulator], tmp_path / "worker-2.log"
            ) as w:
                expected = expected_ids(events, accounts)
                total = sum(len(v) for v in expected.values())
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    got, _keys = _stored(store)
                    if sum(len(set(v)) for v in got.values()) >= total:
                        break
                    assert w.alive(), w.output()[-3000:]
                    time.sleep(1)
                time.sleep(2)
        _assert_exact(store, events, accounts)
    finally:
        store.stop()
        log.close()


def test_outage_of_one_store_pauses_it_and_the_other_keeps_delivering(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    azure = start_store("azure_blob", tmp_path / "azure")  # keeps its data across a restart
    s3 = start_store("s3", tmp_path / "s3")
    log = KafkaLog(kafka_broker.bootstrap)
    try:
        batch = {"max_events": 200, "max_age_s": 0.3}
        accounts = [
            AccountSettings.model_validate(
                {
                    "account_id": "acct-a",
                    "destinations": [azure.destination("a-azure", prefix="p-a", batch=batch)],
                }
            ),
            AccountSettings.model_validate(
                {
                    "account_id": "acct-b",
                    "destinations": [s3.destination("b-s3", prefix="p-b", batch=batch)],
                }
            ),
        ]
        publish_settings(log, accounts)
        options = WorkerOptions(
            retry_policy=RetryPolicy(attempts=2, base=0.05, max_wait=0.2),
            pause_base=0.5,
            pause_cap=2.0,
        )
        router, worker = Router(log), SinkWorker(log, options=options)
        sim = Simulator(SimulatorConfig(accounts=["acct-a", "acct-b"], seed=13))
        events: list[ActivityEvent] = []

        def produce(n: int) -> None:
            batch_events = list(sim.events(n))
            events.extend(batch_events)
            with ActivityProducer(log) as producer:
                for e in batch_events:
                    producer.send(e)

        def run(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                router.step()
                worker.step()

        produce(1000)
        run(3)
        azure.stop()
        outage_started = time.monotonic()
        s3_before = worker.health["b-s3"].delivered_events
        while time.monotonic() - outage_started < 20:
            produce(200)
            run(2)
        assert worker.health["a-azure"].state is State.FAILING
        assert worker.health["a-azure"].last_cause in {"unreachable", "timeout", "transport"}
        # The healthy store kept receiving during the outage.
        assert worker.health["b-s3"].delivered_events > s3_before
        azure.restart()
        expected = expected_ids(events, accounts)
        total = sum(len(v) for v in expected.values())
        _run_until_stored(router, worker, total, timeout=120)
        worker.drain()
        assert worker.health["a-azure"].state.value == "active"
        for store, dest, account in ((azure, "a-azure", "acct-a"), (s3, "b-s3", "acct-b")):
            ids = [
                str(e["event_id"])
                for key, data in store.objects().items()
                for e in decode_object(key, data)
            ]
            assert len(ids) == len(set(ids)), f"{dest}: duplicates"
            assert set(ids) == expected[dest], f"{dest} ({account}): stored set differs"
        worker.close()
        router.close()
    finally:
        azure.stop()
        s3.stop()
        log.close()
