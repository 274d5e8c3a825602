"""The PostgreSQL store's pure parts: free-text values, month partitions, filters, error texts."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors as pg

from auditstream.store.errors import StoreError, StoreUnavailable
from auditstream.store.postgres_errors import connect_error, mapped
from auditstream.store.postgres_filters import VISIBLE, filter_where, no_nul
from auditstream.store.postgres_schema import (
    Month,
    latest_version,
    migrations,
    month_named,
    month_of,
)
from auditstream.store.postgres_text import (
    MAX_POSITION,
    MAX_TOKEN_CHARS,
    NOTHING,
    document,
    query_text,
    tokens,
)
from auditstream.store.query import ActivityFilter, micros

TOKENS = [
    ("Ada Lovelace", ["ada", "lovelace"]),
    ("ada@Example.COM", ["ada", "example", "com"]),
    ("invoice-7_x", ["invoice", "7", "x"]),
    ("Zoë Müller", ["zoe", "muller"]),
    ("東京 report", ["東京", "report"]),
    ("'; DROP TABLE events; --", ["drop", "table", "events"]),
    ("a'b\\c:d&e|f!g<->h", ["a", "b", "c", "d", "e", "f", "g", "h"]),
    ("", []),
    ("x" * (MAX_TOKEN_CHARS + 1) + " y", ["y"]),
]


@pytest.mark.parametrize(("text", "expected"), TOKENS)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("  \t", None),
        ("ada", "('ada')"),
        ("ada@example.com", "('ada' <-> 'example' <-> 'com')"),
        ("salesforce PROD", "('salesforce') & ('prod')"),
        ("\"' OR 1=1 --", "('or') & ('1' <-> '1')"),
        ("*", NOTHING),
        ("( ) -", NOTHING),
        ("* ada", "('ada')"),
    ],
)
def test_query_text(text: str | None, expected: str | None) -> None:
    assert query_text(text) == expected


def test_every_token_is_safe_inside_quotes() -> None:
    hostile = "'\"\\:*&|!<->()[]{}%_\x00\u202e\U0001f600 ' OR 'a'='a"
    for token in tokens(hostile):
        assert token.isalnum()


def test_document_groups_positions_and_stays_bounded() -> None:
    assert document("Ada ada Lovelace") == "'ada':1,2 'lovelace':3"
    assert document("") == ""
    huge = document("word " * 100_000)  # cut at MAX_TEXT_CHARS: "... 'w':13108"
    positions = huge.split(" ")[0].split(":", 1)[1].split(",")
    assert len(positions) == 255
    assert all(int(p) <= MAX_POSITION for p in positions)
    assert len(document(" ".join(f"w{i}" for i in range(50_000)))) < 1_000_000


MONTHS = [
    (datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=UTC), Month(2026, 11)),
    (datetime(2026, 12, 1, tzinfo=UTC), Month(2026, 12)),
    (datetime(2000, 1, 1, tzinfo=UTC), Month(2000, 1)),
    (datetime(2099, 12, 31, 23, 59, tzinfo=UTC), Month(2099, 12)),
    (datetime(1999, 12, 31, 23, 59, tzinfo=UTC), None),
    (datetime(2100, 1, 1, tzinfo=UTC), None),
    (datetime(1970, 1, 1, tzinfo=UTC), None),
]


@pytest.mark.parametrize(("moment", "month"), MONTHS)
def test_month_of(moment: datetime, month: Month | None) -> None:
    assert month_of(micros(moment)) == month
    if month is not None:
        assert month.lower_us <= micros(moment) < month.upper_us
        assert month_named(month.name) == month


def test_months_follow_each_other() -> None:
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 12).upper_us == Month(2027, 1).lower_us
    assert Month(2026, 12).name == "events_y2026m12"


@pytest.mark.parametrize(
    "name", ["events", "events_other", "events_y2026m13", "events_y1999m12", "events_y2026m1"]
)
def test_other_tables_are_no_months(name: str) -> None:
    assert month_named(name) is None


def test_the_migrations_ship_in_order() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert latest_version() == found[-1].version
    assert "CREATE TABLE events" in found[0].sql


def test_every_filter_value_is_a_parameter() -> None:
    nasty = "'; DROP TABLE events; --\x00"
    flt = ActivityFilter(
        nasty,
        actors=(nasty,),
        categories=(nasty,),
        activities=(nasty,),
        resource_type=nasty,
        resource_id=nasty,
        ip=nasty,
        since=datetime(2026, 1, 1, tzinfo=UTC),
        text=nasty,
    )
    where = filter_where(flt)
    text = where.sql.as_string(None)
    assert "DROP" not in text
    assert text.startswith("account_id = %s AND " + VISIBLE)
    assert text.count("%s") == len(where.params)
    assert no_nul(nasty) in where.params
    assert "category" not in filter_where(flt, with_kinds=False).sql.as_string(None)


def test_only_punctuation_matches_nothing() -> None:
    where = filter_where(ActivityFilter("a", text="* -"))
    assert where.sql.as_string(None).endswith("FALSE")


CONNECT_ERRORS = [
    ('FATAL:  password authentication failed for user "x"', "refused the login"),
    ('FATAL:  database "nope" does not exist', "createdb"),
    ('FATAL:  role "ghost" does not exist', "no such user"),
    ("FATAL:  sorry, too many clients already connections", "max_connections"),
    ("FATAL:  no pg_hba.conf entry for host", "pg_hba.conf"),
    ("connection refused", "start the server"),
]


@pytest.mark.parametrize(("text", "says"), CONNECT_ERRORS)
def test_connect_errors_say_what_to_do(text: str, says: str) -> None:
    error = connect_error(psycopg.OperationalError(text), "postgresql://u@h:5432/d")
    assert isinstance(error, StoreUnavailable)
    assert says in str(error)
    assert "postgresql://u@h:5432/d" in str(error)


MAPPED: list[tuple[Exception, type[StoreError], str]] = [
    (pg.UndefinedTable("relation events does not exist"), StoreUnavailable, "store migrate"),
    (pg.InsufficientPrivilege("denied"), StoreUnavailable, "grant"),
    (pg.DiskFull("no space"), StoreError, "Free disk space"),
    (pg.LockNotAvailable("lock timeout"), StoreError, "Retry"),
    (pg.QueryCanceled("statement timeout"), StoreError, "statement timeout"),
    (pg.AdminShutdown("terminating"), StoreError, "stores each event once"),
    (psycopg.OperationalError("server closed the connection"), StoreError, "Retry"),
    (pg.DataError("bad"), StoreError, "nothing was changed"),
]


@pytest.mark.parametrize(("exc", "kind", "says"), MAPPED)
def test_errors_on_a_connection_say_what_to_do(
    exc: Exception, kind: type[StoreError], says: str
) -> None:
    error = mapped(exc, "storing events", "postgresql://u@h:5432/d")
    assert type(error) is kind
    assert says in str(error)
