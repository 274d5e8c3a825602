"""The indexer fed an event id again with other content (a producer that reuses ids, or a
forged record): the stored event stays, the other is not stored, and the indexer says so."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from auditstream.pipeline import topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.producers.sdk import to_record
from auditstream.store.indexer import Indexer, IndexerOptions
from auditstream.store.query import ActivityFilter
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event

CONFLICTING = "auditstream_indexer_events_conflicting_total"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "audit.db")
    yield store
    store.close()


def _index(log: EmbeddedLog, store: SqliteStore, events: list[dict[str, object]]) -> None:
    log.create_topic(topics.ACTIVITY)
    producer = log.producer()
    for event in events:
        producer.produce(to_record(event))
    assert producer.flush(10) == 0
    producer.close()
    indexer = Indexer(log, store, IndexerOptions(retention_interval_s=0, poll_timeout_s=0.1))
    try:
        while indexer.step():
            pass
    finally:
        indexer.close()


def test_an_id_again_with_other_content_is_kept_out_and_said(
    embedded_log: EmbeddedLog, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_event(details={"amount": "10"})
    before = REGISTRY.get_sample_value(CONFLICTING) or 0.0
    with caplog.at_level(logging.WARNING, logger="auditstream.indexer"):
        _index(embedded_log, store, [first, first, {**first, "details": {"amount": "9999"}}])
    assert store.count(ActivityFilter("acme")) == 1
    stored = store.get("acme", str(first["event_id"]))
    assert stored is not None
    assert stored.event["details"] == {"amount": "10"}
    assert store.verify("acme").ok
    assert (REGISTRY.get_sample_value(CONFLICTING) or 0.0) - before == 1
    [warning] = [r for r in caplog.records if "other content" in r.getMessage()]
    assert f"{topics.ACTIVITY}[0]@0..2" in warning.getMessage()


def test_events_at_the_ends_of_time_and_with_a_huge_details_map_are_stored(
    embedded_log: EmbeddedLog, store: SqliteStore
) -> None:
    end = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    events = [
        make_event(occurred_at=datetime(1, 1, 1, tzinfo=UTC)),
        {**make_event(), "occurred_at": end, "recorded_at": end},
        make_event(details={f"k{i}": f"value {i}" for i in range(20_000)}),
    ]
    _index(embedded_log, store, events)
    assert store.count(ActivityFilter("acme")) == 3
    assert store.count(ActivityFilter("acme", text="19999")) == 1
    times = {e.event["occurred_at"] for e in store.export(ActivityFilter("acme"))}
    assert {"0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"} <= times
    assert store.verify("acme").ok
