"""The SQLite audit store: the backend contract, and what only a SQLite file can show."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from auditstream.store.errors import StoreError, StoreUnavailable
from auditstream.store.query import ActivityFilter, Checkpoint, PageRequest
from auditstream.store.sqlite_filters import filter_where, order_by
from auditstream.store.sqlite_store import SqliteStore
from tests.store_contract import (
    ACCOUNT,
    FILTERS,
    HOSTILE_TEXT,
    T0,
    RawSql,
    StoreContract,
    all_pages,
    event_at,
    varied_events,
)


class TestSqliteContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteStore]:
        store = SqliteStore(tmp_path / "audit.db")
        yield store
        store.close()

    @pytest.fixture
    def raw_sql(self, tmp_path: Path) -> RawSql:
        def run(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
            try:
                return conn.execute(statement, params).fetchall()
            finally:
                conn.close()

        return run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "audit.db")
    yield store
    store.close()


def _fail_on_activity(path: Path, activity: str) -> None:
    """A trigger that fails the insert of an event of ``activity`` (a failure mid-batch)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON events WHEN NEW.activity = "
        f"'{activity}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    )
    conn.close()


def test_a_failure_mid_batch_stores_nothing(store: SqliteStore) -> None:
    store.append([event_at(T0)])
    _fail_on_activity(store.path, "boom")
    batch = [event_at(T0), event_at(T0, activity="boom"), event_at(T0, "other")]
    with pytest.raises(StoreError, match="injected failure"):
        store.append(batch)
    assert store.count(ActivityFilter(ACCOUNT)) == 1
    assert store.accounts() == [ACCOUNT]
    assert store.after(ACCOUNT, Checkpoint(), 10).checkpoint == Checkpoint(1)
    assert store.append([event_at(T0)]).inserted == 1
    assert store.verify(ACCOUNT).ok


def test_a_writer_holding_the_lock_gives_a_clear_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "audit.db", busy_timeout_s=0.05)
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=r"locked by another writer.*Retry"):
            store.append([event_at(T0)])
        assert store.count(ActivityFilter(ACCOUNT)) == 0  # readers go on in WAL mode
        other.execute("ROLLBACK")
        assert store.append([event_at(T0)]).inserted == 1
    finally:
        other.close()
        store.close()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "check that the folder"),
        (lambda p: (p.parent.mkdir(), p.write_bytes(b"not sqlite " * 100)), "not an audit store"),
    ],
)
def test_a_file_that_is_not_a_store(tmp_path: Path, setup: Any, message: str) -> None:
    path = tmp_path / "missing" / "audit.db"
    setup(path)
    with pytest.raises(StoreUnavailable, match=message):
        SqliteStore(path)


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "audit.db").close()
    conn = sqlite3.connect(tmp_path / "audit.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreUnavailable, match=r"schema version 99.*newer auditstream"):
        SqliteStore(tmp_path / "audit.db")


def test_migrate_is_idempotent(store: SqliteStore) -> None:
    assert store.migrate() is False
    store.append([event_at(T0)])
    assert SqliteStore(store.path).migrate() is False


def test_control_characters_are_stored_and_searched(store: SqliteStore) -> None:
    event = event_at(T0, details={"k\x00": "nul\x00byte\x1b[31m"})
    store.append([event])
    got = store.get(ACCOUNT, str(event["event_id"]))
    assert got is not None
    assert got.event["details"] == {"k\x00": "nul\x00byte\x1b[31m"}
    assert store.count(ActivityFilter(ACCOUNT, text="nul\x00byte")) == 1


def test_threads_that_come_and_go_keep_few_connections_open(store: SqliteStore) -> None:
    store.append([event_at(T0)])
    for _ in range(50):  # a server that runs each request on a new thread
        thread = threading.Thread(target=store.count, args=(ActivityFilter(ACCOUNT),))
        thread.start()
        thread.join()
    assert len(store._idle) == 1


def test_verify_while_events_arrive_sees_one_snapshot(store: SqliteStore) -> None:
    store.append([event_at(T0) for _ in range(3000)])
    done = threading.Event()
    errors: list[BaseException] = []

    def keep_appending() -> None:
        try:
            while not done.is_set():
                store.append([event_at(T0) for _ in range(10)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        results = [store.verify(ACCOUNT) for _ in range(5)]
    finally:
        done.set()
        writer.join()
    assert errors == []
    assert all(result.ok for result in results), results


def test_threads_append_concurrently_into_one_chain(store: SqliteStore) -> None:
    errors: list[BaseException] = []

    def append_some() -> None:
        try:
            for _ in range(10):
                store.append([event_at(T0) for _ in range(20)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = store.verify(ACCOUNT)
    assert (result.ok, result.rows) == (True, 800)


def test_retention_removes_the_free_text_too(store: SqliteStore) -> None:
    store.append([event_at(T0 - timedelta(days=400), details={"note": "expired words"})])
    store.append([event_at(T0, details={"note": "kept words"})])
    assert store.count(ActivityFilter(ACCOUNT, text="words")) == 2
    assert store.apply_retention(T0).deleted == 1
    assert store.count(ActivityFilter(ACCOUNT, text="words")) == 1
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT COUNT(*) FROM events_text").fetchone() == (1,)
    conn.close()


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "audit.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count(ActivityFilter(ACCOUNT))


@pytest.mark.parametrize(
    ("conditions", "index"),
    [
        ({}, "events_time"),
        ({"actors": ("u-1",), "actor_match": "user_id"}, "events_actor "),
        ({"actors": ("ada@example.com",), "actor_match": "email"}, "events_actor_email"),
        ({"categories": ("recipe",)}, "events_category"),
        ({"activities": ("recipe_created",)}, "events_activity"),
        ({"resource_type": "recipe", "resource_id": "r-1"}, "events_resource"),
    ],
)
def test_pages_read_an_index(store: SqliteStore, conditions: dict[str, Any], index: str) -> None:
    store.append(varied_events(30))
    conn = sqlite3.connect(store.path)
    actor_match = conditions.pop("actor_match", "either")
    where = filter_where(ActivityFilter(ACCOUNT, **conditions), actor_match=actor_match)
    sql = f"SELECT * FROM events WHERE {where.sql} {order_by('desc')} LIMIT 10"  # noqa: S608
    plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", where.params).fetchall()
    conn.close()
    text = " ".join(str(row[-1]) for row in plan)
    assert index in text, text
    assert store.query(ActivityFilter(ACCOUNT, **conditions), PageRequest(limit=5)).events


def test_a_full_disk_stores_nothing_and_says_what_to_do(store: SqliteStore) -> None:
    store.append([event_at(T0)])
    with store._connection() as conn:  # the pool's one connection, used by what follows
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # as if the disk were full
    big = [event_at(T0, details={"blob": "x" * 50_000}) for _ in range(5)]
    with pytest.raises(StoreError, match=r"disk is full.*Free space"):
        store.append(big)
    assert store.count(ActivityFilter(ACCOUNT)) == 1
    with store._connection() as conn:
        conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.append(big).inserted == 5
    assert store.verify(ACCOUNT).ok


def test_too_many_filter_values_is_a_clear_error(store: SqliteStore) -> None:
    actors = tuple(f"u-{i}" for i in range(20_000))
    with pytest.raises(ValueError, match="at most 1000"):
        store.query(ActivityFilter(ACCOUNT, actors=actors), PageRequest())


TEXT_FILTERS = [f for f in FILTERS if "text" in f[1]] + [
    (f"hostile {t[:10]!r}", {"text": t}, None) for t in HOSTILE_TEXT
]


@pytest.mark.parametrize(
    ("name", "conditions", "_"), TEXT_FILTERS, ids=[f[0] for f in TEXT_FILTERS]
)
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_both_ways_of_reading_free_text_agree(
    store: SqliteStore, name: str, conditions: dict[str, Any], _: object, order: str
) -> None:
    store.append(varied_events() + varied_events(20, account_id="other"))
    flt = ActivityFilter(ACCOUNT, **conditions)
    store.few_text_matches = 10**9  # from the text index
    by_text = all_pages(store, flt, order, 7)
    store.few_text_matches = 0  # along the time order
    by_time = all_pages(store, flt, order, 7)
    assert by_text == by_time
    with_actor = ActivityFilter(ACCOUNT, actors=("u-1", "bob@example.com"), **conditions)
    assert all_pages(store, with_actor, order, 5) == [
        e.event_id
        for e in store.export(with_actor, order=order)  # type: ignore[arg-type]
    ]
