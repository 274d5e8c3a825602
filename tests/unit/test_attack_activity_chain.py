"""The audit store's hash chain attacked on a real SQLite file: rows edited, swapped, moved and
deleted behind the store's back, retention over tampered rows, an event redelivered with the
same id and other content, and timestamps at the ends of the calendar."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditstream.store.canonical import timestamp_text
from auditstream.store.event_columns import columns_of
from auditstream.store.query import ActivityFilter, PageRequest
from auditstream.store.row_columns import CHECKED, expected_columns, mismatch
from auditstream.store.sqlite_store import SqliteStore
from tests.factories import make_event
from tests.store_contract import varied_events

NOW = datetime(2026, 11, 29, tzinfo=UTC)
ACCOUNT = "acme"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(path)
    # Ten events of the last two days: none expired.
    store.append(
        [make_event(occurred_at=NOW - timedelta(days=2) + timedelta(minutes=i)) for i in range(10)]
    )
    yield store
    store.close()


def _raw(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Statements run on the file behind the store's back (someone with access to it)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
    finally:
        conn.close()


def test_two_rows_with_their_seq_swapped_are_found(store: SqliteStore, path: Path) -> None:
    _raw(
        path,
        ("UPDATE events SET seq = -1 WHERE seq = 4", ()),
        ("UPDATE events SET seq = 4 WHERE seq = 5", ()),
        ("UPDATE events SET seq = 5 WHERE seq = -1", ()),
    )
    result = store.verify(ACCOUNT)
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_the_first_row_deleted_after_retention_is_found(store: SqliteStore, path: Path) -> None:
    store.append([make_event(occurred_at=NOW - timedelta(days=400)) for _ in range(3)])
    # Those three came last (seq 11-13) and wait behind the ten newer rows: nothing expires.
    assert store.apply_retention(NOW).deleted == 0
    _raw(path, ("DELETE FROM events WHERE seq = 1", ()))
    result = store.verify(ACCOUNT)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 1, "removed")


def test_a_row_moved_to_another_account_is_found_in_both(store: SqliteStore, path: Path) -> None:
    _raw(path, ("UPDATE events SET account_id = 'other' WHERE seq = 10", ()))
    assert not store.verify(ACCOUNT).ok
    assert not store.verify("other").ok


def test_a_redelivered_id_with_other_content_replaces_nothing(store: SqliteStore) -> None:
    first = make_event(details={"amount": "10"})
    store.append([first])
    changed = {**first, "details": {"amount": "10000"}}
    result = store.append([changed, first])
    assert (result.inserted, result.duplicates, result.conflicts) == (0, 2, 1)
    stored = store.get(ACCOUNT, first["event_id"])
    assert stored is not None
    assert stored.event["details"] == {"amount": "10"}
    assert store.verify(ACCOUNT).ok


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
        (datetime(999, 12, 31, 23, 59, tzinfo=UTC), "0999-12-31T23:59:00.000000Z"),
        (datetime(2026, 11, 27, 10, 0, tzinfo=UTC), "2026-11-27T10:00:00.000000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_timestamps_at_the_ends_of_the_calendar_are_iso_8601(moment: datetime, text: str) -> None:
    assert timestamp_text(moment) == text
    assert datetime.fromisoformat(text) == moment


def test_events_at_year_1_and_9999_are_stored_read_back_and_paged(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "ends.db") as store:
        early = make_event(occurred_at=datetime(1, 1, 1, tzinfo=UTC))
        end = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        late = {**make_event(), "occurred_at": end, "recorded_at": end}
        store.append([early, late, make_event()])
        page = store.query(ActivityFilter(ACCOUNT), PageRequest(order="asc", limit=1))
        assert page.events[0].event["occurred_at"] == "0001-01-01T00:00:00.000000Z"
        assert page.next_cursor is not None
        rest = store.query(ActivityFilter(ACCOUNT), PageRequest("asc", 10, page.next_cursor))
        assert [e.event_id for e in rest.events][-1] == late["event_id"]
        # What the store returns can be stored again as it is (a copy, a re-index).
        with SqliteStore(tmp_path / "copy.db") as copy:
            assert copy.append([page.events[0].event]).inserted == 1
        assert store.verify(ACCOUNT).ok


# -- columns beside the hashed JSON ------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor_email", "someone@else.example"),  # hides the event from an actor filter
        ("event_id", "not-the-events-id"),  # one-event reads then miss it
        ("activity", "user_logout"),
        ("occurred_at_us", 0),
    ],
)
def test_a_filter_column_edited_without_the_json_is_found(
    store: SqliteStore, path: Path, column: str, value: object
) -> None:
    _raw(path, (f"UPDATE events SET {column} = ? WHERE seq = 3", (value,)))  # noqa: S608
    result = store.verify(ACCOUNT)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_retention_cannot_be_used_to_delete_recent_events(store: SqliteStore, path: Path) -> None:
    _raw(path, ("UPDATE events SET occurred_at_us = 0 WHERE seq <= 5", ()))
    store.apply_retention(NOW)
    result = store.verify(ACCOUNT)
    assert not result.ok or result.rows == 10


@pytest.mark.parametrize("index", range(0, 60, 7))
def test_the_expected_columns_are_the_stored_ones(index: int) -> None:
    event = varied_events()[index]
    col = columns_of(event)
    assert expected_columns(col.canonical) == (
        col.account_id,
        col.event_id,
        col.occurred_at_us,
        col.category,
        col.activity,
        col.actor_user_id,
        col.actor_email,
        col.resource_type,
        col.resource_id,
        col.outcome,
        col.ip,
    )
    assert len(CHECKED) == 11


@pytest.mark.parametrize("canonical", [b"", b"[]", b"not json", b'{"occurred_at": "yesterday"}'])
def test_bytes_that_are_no_event_leave_the_check_to_the_chain(canonical: bytes) -> None:
    assert expected_columns(canonical) is None
    assert mismatch(canonical, ["x"] * len(CHECKED)) is None
