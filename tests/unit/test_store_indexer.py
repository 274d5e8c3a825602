"""The indexer on the embedded log: batches stored before their offsets are committed, each
event once, bad records dead-lettered as the router does it, retention on its interval."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from auditstream.pipeline import dead_letters, topics
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import OutgoingRecord, Record, TopicPartition
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES
from auditstream.producers.sdk import to_record
from auditstream.schemas import codec
from auditstream.store.errors import InvalidEvent, StoreError
from auditstream.store.index_records import sort_records
from auditstream.store.indexer import INDEXER_GROUP, Indexer, IndexerOptions
from auditstream.store.query import ActivityFilter, Checkpoint
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event

ACTIVITY = TopicPartition(topics.ACTIVITY, 0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "audit.db")
    yield store
    store.close()


def _produce(log: EmbeddedLog, records: list[OutgoingRecord]) -> None:
    log.create_topic(topics.ACTIVITY)
    producer = log.producer()
    for record in records:
        producer.produce(record)
    assert producer.flush(10) == 0
    producer.close()


def _drain(indexer: Indexer) -> int:
    total = 0
    while taken := indexer.step():
        total += taken
    return total


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _dead_letters(log: EmbeddedLog) -> list[Record]:
    reader = log.reader(topics.DEAD_LETTERS)
    try:
        return reader.poll(1000, 0.2)
    finally:
        reader.close()


def _with_value(record: OutgoingRecord, value: bytes) -> OutgoingRecord:
    return OutgoingRecord(record.topic, value, record.key, record.headers)


def _record(out: OutgoingRecord, offset: int = 0) -> Record:
    return Record(out.topic, 0, offset, out.key, out.value, out.headers)


# -- sorting records (pure) ----------------------------------------------------------------------

GOOD = to_record(make_event())
_BAD_KEY = OutgoingRecord(GOOD.topic, GOOD.value, b"globex", GOOD.headers)
_NO_KEY = OutgoingRecord(GOOD.topic, GOOD.value, None, GOOD.headers)
_BAD_BODY = _with_value(GOOD, GOOD.value[:10] + b"\xff" * 20)
_UNKNOWN_FP = _with_value(GOOD, b"\xc3\x01" + b"\x00" * 8 + GOOD.value[10:])
_NO_HEADERS = OutgoingRecord(GOOD.topic, GOOD.value, GOOD.key, ())
# Built as the SDK builds a record, without its validation: a producer that skips it.
_TOO_LARGE = _with_value(GOOD, codec.encode(make_event(details={"pad": "x" * MAX_RECORD_BYTES})))
_UNKNOWN_ACTIVITY = OutgoingRecord(
    GOOD.topic,
    codec.encode(make_event(activity="no_such_activity")),
    GOOD.key,
    tuple((k, b"no_such_activity" if k == "activity" else v) for k, v in GOOD.headers),
)
_BAD_BODY_NO_KEY = OutgoingRecord(GOOD.topic, _BAD_BODY.value, None, GOOD.headers)


@pytest.mark.parametrize(
    ("record", "stored", "dead_letter", "router_reason"),
    [
        (GOOD, 1, None, None),
        (_BAD_BODY, 0, "malformed", None),
        (_BAD_KEY, 0, "account_mismatch", None),
        (_NO_KEY, 0, None, "missing_key"),
        (_UNKNOWN_FP, 0, None, "unknown_schema"),
        (_BAD_BODY_NO_KEY, 0, None, "missing_key"),
        # Events the router cannot route are events all the same.
        (_NO_HEADERS, 1, None, None),
        (_TOO_LARGE, 1, None, None),
        (_UNKNOWN_ACTIVITY, 1, None, None),
    ],
)
def test_sort_records(
    record: OutgoingRecord, stored: int, dead_letter: str | None, router_reason: str | None
) -> None:
    found = sort_records([_record(record)])
    assert len(found.events) == stored
    assert [reason for _, reason in found.dead_letters] == ([dead_letter] if dead_letter else [])
    assert found.left_to_router == ([router_reason] if router_reason else [])
    for letter, _ in found.dead_letters:
        headers = dict(letter.headers)
        assert headers[dead_letters.STAGE] == b"indexer"
        assert headers[dead_letters.REASON] == dead_letter.encode()  # type: ignore[union-attr]
        assert letter.value == record.value


# -- the loop ------------------------------------------------------------------------------------


def test_indexes_stores_once_and_commits_after(
    embedded_log: EmbeddedLog, store: SqliteStore
) -> None:
    events = [make_event(account_id=a) for a in ("acme", "globex") for _ in range(30)]
    records = [to_record(e) for e in events]
    _produce(embedded_log, [*records[:40], _with_value(records[0], records[0].value[:12]),
                            *records[40:]])  # fmt: skip
    before = _metric("auditstream_indexer_events_dead_lettered_total", reason="malformed")
    indexer = Indexer(embedded_log, store, IndexerOptions(batch_size=7, retention_interval_s=0))
    try:
        assert _drain(indexer) == 61
    finally:
        indexer.close()
    assert store.count(ActivityFilter("acme")) == 30
    assert store.count(ActivityFilter("globex")) == 30
    assert store.verify("acme").ok
    seqs = store.after("acme", Checkpoint(), 100).events
    assert [e.event_id for e in seqs] == [str(e["event_id"]) for e in events[:30]]
    committed = embedded_log.committed_offsets(INDEXER_GROUP, topics.ACTIVITY)
    assert committed == {ACTIVITY: 61}
    [letter] = _dead_letters(embedded_log)
    assert letter.header(dead_letters.REASON) == b"malformed"
    assert letter.header(dead_letters.SOURCE_OFFSET) == b"40"
    after = _metric("auditstream_indexer_events_dead_lettered_total", reason="malformed")
    assert after == before + 1


def test_a_batch_read_again_is_stored_once(embedded_log: EmbeddedLog, store: SqliteStore) -> None:
    _produce(embedded_log, [to_record(make_event()) for _ in range(20)])
    indexer = Indexer(embedded_log, store, IndexerOptions(batch_size=20, retention_interval_s=0))
    duplicates = _metric("auditstream_indexer_events_duplicate_total")
    try:
        _drain(indexer)
        # As after a crash between the store and the commit: the group reads the batch again.
        indexer._consumer.commit({ACTIVITY: 5})
        indexer._consumer.seek(ACTIVITY, 5)
        assert _drain(indexer) == 15
    finally:
        indexer.close()
    assert store.count(ActivityFilter("acme")) == 20
    assert _metric("auditstream_indexer_events_duplicate_total") == duplicates + 15
    assert store.verify("acme").ok


class _FailingStore:
    """A store whose first ``failures`` appends fail as a locked database does."""

    def __init__(self, inner: SqliteStore, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def append(self, events: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise StoreError("the audit store stayed locked by another writer")
        return self.inner.append(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_store_failure_rewinds_and_commits_nothing(
    embedded_log: EmbeddedLog, store: SqliteStore
) -> None:
    _produce(embedded_log, [to_record(make_event()) for _ in range(10)])
    failing = _FailingStore(store, failures=2)
    indexer = Indexer(embedded_log, failing, IndexerOptions(retention_interval_s=0))
    try:
        for _ in range(2):
            with pytest.raises(StoreError):
                indexer.step()
            assert embedded_log.committed_offsets(INDEXER_GROUP, topics.ACTIVITY) == {}
        assert indexer.step() == 10
    finally:
        indexer.close()
    assert store.count(ActivityFilter("acme")) == 10


def test_retention_runs_on_its_interval(embedded_log: EmbeddedLog, store: SqliteStore) -> None:
    now = datetime(2027, 12, 1, tzinfo=UTC)
    store.append([make_event(occurred_at=now - timedelta(days=400)) for _ in range(25)])
    clock = [0.0]
    indexer = Indexer(
        embedded_log,
        store,
        IndexerOptions(retention_interval_s=3600, retention_batch=10, poll_timeout_s=0.01),
        now=lambda: now,
        clock=lambda: clock[0],
    )
    deleted = _metric("auditstream_indexer_retention_deleted_total")
    try:
        assert indexer.retention_due()
        assert indexer.run_retention() == 25
        assert not indexer.retention_due()
        clock[0] = 3600.0
        assert indexer.retention_due()
    finally:
        indexer.close()
    assert _metric("auditstream_indexer_retention_deleted_total") == deleted + 25
    assert store.verify("acme").ok


def test_retention_runs_are_counted_by_outcome(
    embedded_log: EmbeddedLog, store: SqliteStore
) -> None:
    now = datetime(2027, 12, 1, tzinfo=UTC)
    store.append([make_event(occurred_at=now - timedelta(days=400)) for _ in range(3)])
    indexer = Indexer(embedded_log, store, IndexerOptions(poll_timeout_s=0.01), now=lambda: now)
    runs = "auditstream_indexer_retention_runs_total"
    complete, failed = _metric(runs, outcome="complete"), _metric(runs, outcome="failed")
    try:
        assert indexer.run_retention() == 3
        assert _metric(runs, outcome="complete") == complete + 1
        assert (
            _metric("auditstream_indexer_retention_last_complete_timestamp_seconds")
            == now.timestamp()
        )
        store.close()  # the store refuses from here on
        with pytest.raises(StoreError):
            indexer.run_retention()
        assert _metric(runs, outcome="failed") == failed + 1
    finally:
        indexer.close()


def test_run_stops_when_asked(embedded_log: EmbeddedLog, store: SqliteStore) -> None:
    _produce(embedded_log, [to_record(make_event()) for _ in range(5)])
    indexer = Indexer(embedded_log, store, IndexerOptions(poll_timeout_s=0.05))
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if store.count(ActivityFilter("acme")) == 5:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
        indexer.close()
    assert not thread.is_alive()
    assert store.count(ActivityFilter("acme")) == 5


class _RefusingStore(_FailingStore):
    """A store that refuses (``InvalidEvent``) any batch holding an event marked ``refuse``."""

    def append(self, events: Any) -> Any:
        if any(event["details"].get("refuse") for event in events):
            raise InvalidEvent("event 0: refused")
        return self.inner.append(events)


def test_an_event_the_store_refuses_is_dead_lettered(
    embedded_log: EmbeddedLog, store: SqliteStore
) -> None:
    marked = make_event(details={"refuse": "yes"})
    _produce(embedded_log, [to_record(make_event()), to_record(marked), to_record(make_event())])
    refusing = _RefusingStore(store, failures=0)
    indexer = Indexer(embedded_log, refusing, IndexerOptions(retention_interval_s=0))
    try:
        assert _drain(indexer) == 3
    finally:
        indexer.close()
    assert store.count(ActivityFilter("acme")) == 2
    assert store.get("acme", str(marked["event_id"])) is None
    [letter] = _dead_letters(embedded_log)
    assert letter.header(dead_letters.REASON) == b"invalid_event"
    assert letter.header(dead_letters.SOURCE_OFFSET) == b"1"
    assert embedded_log.committed_offsets(INDEXER_GROUP, topics.ACTIVITY) == {ACTIVITY: 3}


def test_a_commit_that_fails_reads_the_batch_again_and_stores_it_once(
    embedded_log: EmbeddedLog, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _produce(embedded_log, [to_record(make_event()) for _ in range(10)])
    indexer = Indexer(embedded_log, store, IndexerOptions(retention_interval_s=0))
    real_commit = indexer._consumer.commit
    calls = []

    def commit_fails_once(offsets: Any) -> None:
        calls.append(offsets)
        if len(calls) == 1:
            raise LogError("kafka: broker went away")
        real_commit(offsets)

    monkeypatch.setattr(indexer._consumer, "commit", commit_fails_once)
    duplicates = _metric("auditstream_indexer_events_duplicate_total")
    try:
        with pytest.raises(LogError):
            indexer.step()
        assert store.count(ActivityFilter("acme")) == 10  # stored, not committed
        assert indexer.step() == 10  # the same records again
    finally:
        indexer.close()
    assert _metric("auditstream_indexer_events_duplicate_total") == duplicates + 10
    assert store.count(ActivityFilter("acme")) == 10
    assert embedded_log.committed_offsets(INDEXER_GROUP, topics.ACTIVITY) == {ACTIVITY: 10}


def test_run_pauses_after_a_failure_and_goes_on(
    embedded_log: EmbeddedLog, store: SqliteStore
) -> None:
    _produce(embedded_log, [to_record(make_event()) for _ in range(5)])
    failing = _FailingStore(store, failures=3)
    indexer = Indexer(
        embedded_log, failing, IndexerOptions(poll_timeout_s=0.05, retry_pause_s=0.01)
    )
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, args=(stop,))
    thread.start()
    try:
        for _ in range(400):
            if store.count(ActivityFilter("acme")) == 5:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
        indexer.close()
    assert failing.failures == 0
    assert store.count(ActivityFilter("acme")) == 5
