"""The PostgreSQL audit store attacked on a real server: rows edited behind its back, an event
redelivered with the same id and other content, timestamps at the ends of the calendar, and the
server stopped and started again under a running indexer (real Kafka)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from auditstream.pipeline import topics
from auditstream.pipeline.kafka_log import KafkaLog
from auditstream.producers.sdk import to_record
from auditstream.store.errors import StoreError
from auditstream.store.indexer import Indexer, IndexerOptions
from auditstream.store.postgres_store import PostgresStore
from auditstream.store.query import ActivityFilter, Checkpoint, PageRequest
from devservices.kafka import KafkaBroker
from devservices.postgres import PostgresServer
from tests.factories import make_event
from tests.postgres_fixtures import migrated_database, postgres_dsn  # noqa: F401

NOW = datetime.now(UTC).replace(microsecond=0)
ACCOUNT = "acme"


def _raw(dsn: str, statement: str, *params: Any) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement.encode(), params)


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresStore]:  # noqa: F811
    store = PostgresStore(postgres_dsn)
    # Ten events of the last two days: none expired.
    start = NOW - timedelta(days=2)
    store.append([make_event(occurred_at=start + timedelta(minutes=i)) for i in range(10)])
    yield store
    store.close()


def test_two_rows_with_their_seq_swapped_are_found(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    _raw(postgres_dsn, "UPDATE events SET seq = -1 WHERE seq = 4")
    _raw(postgres_dsn, "UPDATE events SET seq = 4 WHERE seq = 5")
    _raw(postgres_dsn, "UPDATE events SET seq = 5 WHERE seq = -1")
    result = store.verify(ACCOUNT)
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_a_redelivered_id_with_other_content_replaces_nothing(store: PostgresStore) -> None:
    first = make_event(details={"amount": "10"})
    store.append([first])
    result = store.append([{**first, "details": {"amount": "10000"}}, first])
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 2, 1)
    stored = store.get(ACCOUNT, str(first["event_id"]))
    assert stored is not None
    assert stored.event["details"] == {"amount": "10"}
    assert store.verify(ACCOUNT).ok


def test_events_at_year_1_and_9999_are_stored_read_back_and_paged(store: PostgresStore) -> None:
    end = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    early = make_event(occurred_at=datetime(1, 1, 1, tzinfo=UTC))
    late = {**make_event(), "occurred_at": end, "recorded_at": end}
    store.append([early, late])
    first = store.query(ActivityFilter(ACCOUNT), PageRequest(order="asc", limit=1)).events[0]
    assert first.event["occurred_at"] == "0001-01-01T00:00:00.000000Z"
    newest = store.query(ActivityFilter(ACCOUNT), PageRequest(limit=1)).events[0]
    assert newest.event["occurred_at"] == "9999-12-31T23:59:59.999999Z"
    assert store.verify(ACCOUNT).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor_email", "someone@else.example"), ("event_id", "not-the-id"), ("activity", "x")],
)
def test_a_filter_column_edited_without_the_json_is_found(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
    column: str,
    value: str,
) -> None:
    _raw(postgres_dsn, f"UPDATE events SET {column} = %s WHERE seq = 3", value)  # noqa: S608
    result = store.verify(ACCOUNT)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_retention_cannot_be_used_to_delete_recent_events(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    _raw(postgres_dsn, "UPDATE events SET occurred_at_us = 0 WHERE seq <= 5")
    store.apply_retention(NOW)
    result = store.verify(ACCOUNT)
    assert not result.ok or result.rows == 10


# -- the server stopped under a running indexer ---------------------------------------------


def _failures() -> float:
    return REGISTRY.get_sample_value("auditstream_indexer_store_failures_total") or 0.0


def _wait(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_server_stopped_and_started_under_the_indexer(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    with PostgresServer.start(tmp_path / "pg") as server:
        dsn = migrated_database(server)
        log = KafkaLog(kafka_broker.bootstrap)
        store = PostgresStore(dsn, connect_timeout_s=2)
        producer = log.producer()
        stop = threading.Event()
        events: list[dict[str, Any]] = []

        def produce(count: int) -> None:
            batch = [make_event(account_id=("acme", "globex")[i % 2]) for i in range(count)]
            for event in batch:
                producer.produce(to_record(event))
            assert producer.flush(60) == 0
            events.extend(batch)

        def stored() -> int:
            try:
                return sum(store.count(ActivityFilter(a)) for a in ("acme", "globex"))
            except StoreError:  # this test's own reads meet the restart too
                return -1

        indexer = Indexer(
            log,
            store,
            IndexerOptions(batch_size=20, retention_interval_s=0, retry_pause_s=0.2),
            activity_partitions=2,
        )
        runner = threading.Thread(target=indexer.run, args=(stop,), name="test-indexer")
        try:
            log.create_topic(topics.ACTIVITY, partitions=2)
            produce(200)
            runner.start()
            _wait(lambda: stored() >= 40, "the indexer stored nothing")
            failures = _failures()
            server.stop_keeping_data()
            produce(200)  # arrives while the store is gone
            _wait(lambda: _failures() > failures, "the indexer never met the stopped server")
            server.restart()
            _wait(lambda: stored() >= 400, "the indexer did not catch up after the restart")
            for account in ("acme", "globex"):
                got = [e.event_id for e in store.after(account, Checkpoint(), 1000).events]
                want = [str(e["event_id"]) for e in events if e["account_id"] == account]
                assert got == want  # each once, in the partition's order
                assert store.verify(account).ok
        finally:
            stop.set()
            if runner.ident is not None:
                runner.join(timeout=120)
            indexer.close()
            producer.close()
            log.close()
            store.close()
