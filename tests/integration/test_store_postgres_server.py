"""What only the PostgreSQL backend shows, on real servers: migrations, month partitions and
their retention, receive order under concurrent appends, and failures of the server itself
(stopped or killed mid-append, gone while the pool waits, a wrong password)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from auditstream.store.base import RetentionResult
from auditstream.store.errors import InvalidEvent, StoreError, StoreUnavailable
from auditstream.store.postgres_schema import migrations
from auditstream.store.postgres_store import MAX_KEY_BYTES, PostgresStore
from auditstream.store.query import ActivityFilter, Checkpoint, PageRequest
from devservices.ports import free_port
from devservices.postgres import PostgresServer
from tests.postgres_fixtures import migrated_database, postgres_dsn  # noqa: F401
from tests.store_contract import ACCOUNT, T0, event_at, varied_events


def rows(dsn: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params)
        return cursor.fetchall() if cursor.description else []


def months(dsn: str) -> set[str]:
    return {
        name
        for (name,) in rows(
            dsn,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass",
        )
    }


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresStore]:  # noqa: F811
    store = PostgresStore(postgres_dsn)
    yield store
    store.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server this test may stop, crash and restart."""
    with PostgresServer.start(tmp_path / "pg") as server:
        yield server


# -- migrations ---------------------------------------------------------------------------


def test_migrations_apply_once_even_when_run_at_once(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database(f"m_{uuid.uuid4().hex[:12]}")
    stores = [PostgresStore(dsn) for _ in range(4)]
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def run(store: PostgresStore) -> None:
        try:
            applied.append(store.migrate())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        shipped = [m.version for m in migrations()]
        assert sorted(applied) == [[], [], [], shipped]
        assert stores[0].migrate() == []
        recorded = rows(dsn, "SELECT version, name FROM schema_migrations ORDER BY version")
        assert recorded == [(m.version, m.name) for m in migrations()]
        assert stores[0].append([event_at(T0)]).inserted == 1
    finally:
        for store in stores:
            store.close()


def test_a_store_without_its_tables_says_to_migrate(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database(f"m_{uuid.uuid4().hex[:12]}")
    with PostgresStore(dsn) as store:
        with pytest.raises(StoreUnavailable, match="auditstream store migrate"):
            store.append([event_at(T0)])
        with pytest.raises(StoreUnavailable, match="auditstream store migrate"):
            store.query(ActivityFilter(ACCOUNT), PageRequest())


def test_a_database_of_a_newer_release_is_refused(postgres_dsn: str) -> None:  # noqa: F811
    rows(postgres_dsn, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    with PostgresStore(postgres_dsn) as store, pytest.raises(StoreUnavailable, match="newer"):
        store.migrate()


# -- month partitions ---------------------------------------------------------------------


def test_a_new_month_gets_its_partition_and_the_next(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    store.append([event_at(datetime(2031, 3, 31, 23, 59, tzinfo=UTC))])
    assert {"events_y2031m03", "events_y2031m04"} <= months(postgres_dsn)
    [(where,)] = rows(postgres_dsn, "SELECT tableoid::regclass::text FROM events")
    assert where == "events_y2031m03"


@pytest.mark.parametrize(
    "when",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2100, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_times_far_off_go_to_the_default_partition(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
    when: datetime,
) -> None:
    before = months(postgres_dsn)
    event = event_at(when)
    assert store.append([event]).inserted == 1
    assert months(postgres_dsn) == before
    got = store.get(ACCOUNT, str(event["event_id"]))
    assert got is not None
    assert got.occurred_at == when
    assert store.verify(ACCOUNT).ok


def test_retention_drops_a_month_once_no_row_in_it_is_kept(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    old = [event_at(datetime(2025, 1, 10, tzinfo=UTC) + timedelta(hours=i)) for i in range(30)]
    old += [event_at(datetime(2025, 1, 20, tzinfo=UTC), "other") for _ in range(5)]
    recent = [event_at(datetime(2026, 2, 10, tzinfo=UTC))]
    store.append(old)
    store.append(recent)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    results: list[RetentionResult] = []
    while not (results and results[-1].complete):
        results.append(store.apply_retention(now, batch_size=12))
        assert store.verify(ACCOUNT).ok
        assert store.verify("other").ok
    assert [r.deleted for r in results] == [12, 12, 11]
    assert "events_y2025m01" not in months(postgres_dsn)
    assert rows(postgres_dsn, "SELECT count(*) FROM events") == [(1,)]
    assert store.count(ActivityFilter(ACCOUNT)) == 1
    assert store.accounts() == [ACCOUNT, "other"]
    assert [e.seq for e in store.after(ACCOUNT, Checkpoint(), 10).events] == [31]


def test_rows_hidden_by_retention_stay_unseen_until_their_month_goes(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    store.append([event_at(datetime(2025, 1, 10, tzinfo=UTC)) for _ in range(3)])
    late = event_at(datetime(2025, 1, 11, tzinfo=UTC), "other")
    store.append([event_at(datetime(2026, 2, 1, tzinfo=UTC), "other"), late])
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert store.apply_retention(now).deleted == 3
    # "other" keeps its January row (it came after a row that is kept): the month stays, and
    # the three rows before acme's chain start stay on disk but out of every read.
    assert "events_y2025m01" in months(postgres_dsn)
    assert rows(postgres_dsn, "SELECT count(*) FROM events WHERE account_id = 'acme'") == [(3,)]
    assert store.count(ActivityFilter(ACCOUNT)) == 0
    assert store.query(ActivityFilter(ACCOUNT), PageRequest()).events == []
    assert store.after(ACCOUNT, Checkpoint(), 10).events == []
    assert list(store.export(ActivityFilter(ACCOUNT))) == []
    assert store.verify(ACCOUNT).ok
    # Once the late row expires, the whole month goes.
    assert store.apply_retention(now + timedelta(days=365)).deleted == 2
    assert "events_y2025m01" not in months(postgres_dsn)
    assert store.verify("other").ok


def test_a_short_retention_deletes_rows_of_months_others_keep(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    store.append([event_at(now - timedelta(days=60)) for _ in range(4)])
    store.append([event_at(now - timedelta(days=60), "other")])
    store.set_retention(ACCOUNT, 30)
    assert store.apply_retention(now).deleted == 4
    assert rows(postgres_dsn, "SELECT account_id FROM events") == [("other",)]


# -- receive order and bad input ----------------------------------------------------------


def test_concurrent_appends_commit_in_seq_order(store: PostgresStore) -> None:
    writers, batches, size = 4, 15, 20
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(batches):
                store.append([event_at(T0) for _ in range(size)])
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        checkpoint = Checkpoint()
        try:
            while True:
                done = stop.is_set()
                page = store.after(ACCOUNT, checkpoint, 1000)
                seen.extend(e.seq for e in page.events)
                checkpoint = page.checkpoint
                if done and not page.events:
                    return
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join()
    assert errors == []
    total = writers * batches * size
    # A reader that saw seq n before n-1 committed would have skipped n-1 for ever.
    assert seen == list(range(1, total + 1))
    assert store.verify(ACCOUNT).ok


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("account_id", "a" * (MAX_KEY_BYTES + 1), "account_id"),
        ("category", "é" * MAX_KEY_BYTES, "category"),
        ("actor", {"user_id": "u" * 3000, "name": None, "email": None, "role": None,
                   "auth_method": "system"}, "actor.user_id"),
    ],
)  # fmt: skip
def test_an_indexed_value_too_long_stores_nothing_and_says_which(
    store: PostgresStore, field: str, value: Any, named: str
) -> None:
    bad = event_at(T0)
    bad[field] = value
    with pytest.raises(InvalidEvent, match=f"event 1: {named} is longer than"):
        store.append([event_at(T0), bad])
    assert store.count(ActivityFilter(ACCOUNT)) == 0
    assert store.append([event_at(T0)]).inserted == 1


def test_nul_characters_are_stored_and_found(store: PostgresStore) -> None:
    nul = "a\x00b"
    event = event_at(
        T0,
        account_id=nul,
        actor={"user_id": nul, "name": nul, "email": None, "role": None, "auth_method": "sso"},
        details={nul: nul},
    )
    assert store.append([event]).inserted == 1
    got = store.get(nul, str(event["event_id"]))
    assert got is not None
    assert (got.account_id, got.event["actor"]["user_id"]) == (nul, nul)
    assert store.count(ActivityFilter(nul, actors=(nul,))) == 1
    assert store.verify(nul).ok


def test_hostile_text_never_reaches_sql(store: PostgresStore, postgres_dsn: str) -> None:  # noqa: F811
    store.append(varied_events(10))
    for text in ("'); DROP TABLE events; --", "a' & !b | c <-> d", "':* & 'x':A"):
        assert store.count(ActivityFilter(ACCOUNT, text=text)) == 0
    assert rows(postgres_dsn, "SELECT count(*) FROM events") == [(10,)]


def test_closing_an_export_early_releases_its_connection(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    store.append([event_at(T0 + timedelta(seconds=i)) for i in range(2500)])
    export = store.export(ActivityFilter(ACCOUNT))
    next(export)
    open_cursors = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'auditstream-store' "
        "AND state = 'idle in transaction'"
    )
    assert rows(postgres_dsn, open_cursors) == [(1,)]
    export.close()  # type: ignore[attr-defined]
    assert rows(postgres_dsn, open_cursors) == [(0,)]
    assert store.count(ActivityFilter(ACCOUNT)) == 2500


# -- the server failing -------------------------------------------------------------------


def _wait_for_sleep(dsn: str) -> None:
    for _ in range(600):
        found = rows(dsn, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
        if found == [(1,)]:
            return
        time.sleep(0.05)
    raise AssertionError("the append never reached the injected pause")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_the_server_gone_mid_append_leaves_nothing_half_written(
    own_server: PostgresServer, how: str
) -> None:
    dsn = migrated_database(own_server)
    store = PostgresStore(dsn, connect_timeout_s=2)
    try:
        store.append([event_at(T0) for _ in range(3)])
        # Behind the store's back: a pause after the rows went in, before the chain head moves.
        rows(
            dsn,
            "CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$",
        )
        rows(dsn, "CREATE TRIGGER pause BEFORE UPDATE ON account_chains FOR EACH ROW "
             "EXECUTE FUNCTION pause()")  # fmt: skip
        batch = [event_at(T0 + timedelta(seconds=i)) for i in range(50)]
        failure: list[BaseException] = []

        def append() -> None:
            try:
                store.append(batch)
            except BaseException as exc:
                failure.append(exc)

        writer = threading.Thread(target=append)
        writer.start()
        _wait_for_sleep(dsn)
        own_server.kill9() if how == "kill9" else own_server.stop_keeping_data()
        writer.join()
        assert len(failure) == 1
        assert isinstance(failure[0], StoreError)
        assert "Retry" in str(failure[0])
        with pytest.raises(StoreUnavailable, match="start the server"):
            store.count(ActivityFilter(ACCOUNT))
        own_server.restart()
        rows(dsn, "DROP TRIGGER pause ON account_chains")
        assert store.count(ActivityFilter(ACCOUNT)) == 3
        assert store.verify(ACCOUNT).ok
        assert store.append(batch).inserted == 50
        assert store.verify(ACCOUNT).ok
    finally:
        store.close()


@pytest.mark.timeout(120)
def test_calls_fail_promptly_while_the_server_is_gone(own_server: PostgresServer) -> None:
    dsn = migrated_database(own_server)
    store = PostgresStore(dsn, connect_timeout_s=2)
    try:
        store.append([event_at(T0)])
        own_server.stop_keeping_data()
        for call in (
            lambda: store.append([event_at(T0)]),
            lambda: store.query(ActivityFilter(ACCOUNT), PageRequest()),
            lambda: list(store.export(ActivityFilter(ACCOUNT))),
            lambda: store.verify(ACCOUNT),
        ):
            with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL"):
                call()
        own_server.restart()
        assert store.count(ActivityFilter(ACCOUNT)) == 1
        assert store.append([event_at(T0)]).inserted == 1
    finally:
        store.close()


def test_a_server_that_is_not_there() -> None:
    dsn = f"postgresql://auditstream:secret-pw@127.0.0.1:{free_port()}/auditstream"
    with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL") as caught:
        PostgresStore(dsn, connect_timeout_s=2)
    assert "secret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"password": "wrong-secret"}, "refused the login"),
        ({"database": "no_such_db"}, "does not exist"),
    ],
)
def test_a_wrong_password_or_database_is_named_without_the_password(
    postgres_server: PostgresServer, change: dict[str, str], says: str
) -> None:
    password = change.get("password", postgres_server.password)
    database = change.get("database", "auditstream")
    dsn = f"postgresql://auditstream:{password}@127.0.0.1:{postgres_server.port}/{database}"
    with pytest.raises(StoreUnavailable, match=says) as caught:
        PostgresStore(dsn)
    assert password not in str(caught.value)


@pytest.mark.parametrize("dsn", ["not a dsn at all password=p4ss", "postgresql://u:p4ss@[::1"])
def test_a_malformed_dsn_is_refused_without_echoing_it(dsn: str) -> None:
    with pytest.raises(StoreUnavailable, match="not a PostgreSQL connection string") as caught:
        PostgresStore(dsn)
    assert "p4ss" not in str(caught.value)


def test_a_month_dropped_by_another_process_is_made_again(
    postgres_dsn: str,  # noqa: F811
) -> None:
    january = datetime(2025, 1, 10, tzinfo=UTC)
    with PostgresStore(postgres_dsn) as writer, PostgresStore(postgres_dsn) as janitor:
        writer.append([event_at(january)])
        assert janitor.apply_retention(datetime(2026, 6, 1, tzinfo=UTC)).deleted == 1
        assert "events_y2025m01" not in months(postgres_dsn)
        # The writer still believes the month exists; its append makes it again.
        late = event_at(january + timedelta(hours=1))
        assert writer.append([late]).inserted == 1
        assert writer.get(ACCOUNT, str(late["event_id"])) is not None
        assert writer.verify(ACCOUNT).ok
        # Two retention runs racing for one month: one drops it, the other lets it be.
        with PostgresStore(postgres_dsn) as other:
            now = datetime(2026, 6, 1, tzinfo=UTC)
            results = [janitor.apply_retention(now), other.apply_retention(now)]
        assert sum(r.deleted for r in results) == 1
        assert janitor.verify(ACCOUNT).ok


@pytest.mark.timeout(120)
def test_a_hung_server_fails_new_connections_in_time_and_old_ones_go_on(
    own_server: PostgresServer,
) -> None:
    dsn = migrated_database(own_server)
    store = PostgresStore(dsn, connect_timeout_s=2)
    pid = own_server.pid
    assert pid is not None
    try:
        store.append([event_at(T0)])
        os.kill(pid, signal.SIGSTOP)  # the postmaster hangs; running backends do not
        try:
            with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL"):
                PostgresStore(dsn, connect_timeout_s=2)
            assert store.count(ActivityFilter(ACCOUNT)) == 1
        finally:
            os.kill(pid, signal.SIGCONT)
        assert store.append([event_at(T0)]).inserted == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    "now", [datetime(9999, 1, 1, tzinfo=UTC), datetime(1971, 1, 1, tzinfo=UTC)], ids=str
)
def test_retention_at_the_ends_of_time(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
    now: datetime,
) -> None:
    times = [datetime(1980, 1, 1, tzinfo=UTC), T0, datetime(2150, 1, 1, tzinfo=UTC)]
    store.append([event_at(t) for t in times])
    expired = sum(1 for t in times if t < now - timedelta(days=365))
    assert store.apply_retention(now).deleted == expired
    assert store.count(ActivityFilter(ACCOUNT)) == 3 - expired
    assert store.verify(ACCOUNT).ok
    if expired == 3:
        assert rows(postgres_dsn, "SELECT count(*) FROM events") == [(0,)]


def test_the_store_commands_on_postgresql(postgres_dsn: str) -> None:  # noqa: F811
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "auditstream", "store", *args, "--store", postgres_dsn],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "tables up to date" in migrated.stdout
    password = postgres_dsn.split(":")[2].split("@")[0]
    assert password not in migrated.stdout + migrated.stderr
    with PostgresStore(postgres_dsn) as store:
        store.append([event_at(T0)])
    verified = run("verify", "--account", ACCOUNT)
    assert verified.returncode == 0, verified.stderr
    swept = run("retention", "--now", "2030-01-01T00:00:00Z")
    assert swept.returncode == 0, swept.stderr
    with PostgresStore(postgres_dsn) as store:
        assert store.count(ActivityFilter(ACCOUNT)) == 0


_CLIENT = """
import os, sys
from datetime import UTC, datetime, timedelta
from auditstream.store.postgres_store import PostgresStore
from tests.store_contract import event_at
store = PostgresStore(os.environ["DSN"])
batch = [event_at(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i)) for i in range(20000)]
print("ready", flush=True)
store.append(batch)
print("stored", flush=True)
"""


@pytest.mark.timeout(240)
def test_a_client_killed_mid_copy_leaves_nothing_half_written(
    store: PostgresStore,
    postgres_dsn: str,  # noqa: F811
) -> None:
    store.append([event_at(T0) for _ in range(5)])
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT],
        env={**os.environ, "DSN": postgres_dsn, "PYTHONPATH": str(Path.cwd())},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "ready"
        copying = (
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'auditstream-store' "
            "AND query LIKE 'COPY events%%' AND state = 'active'"
        )
        backend: list[tuple[Any, ...]] = []
        for _ in range(2400):
            backend = rows(postgres_dsn, copying)
            if backend or client.poll() is not None:
                break
            time.sleep(0.05)
        client.kill()  # kill -9 while its COPY streams in
    finally:
        client.wait(60)
        if client.stdout is not None:
            client.stdout.close()
    gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
    for _ in range(1200):  # the server rolls back once it sees the socket closed
        if not backend or rows(postgres_dsn, gone, backend[0][0]) == [(0,)]:
            break
        time.sleep(0.05)
    assert backend, "the client's COPY was never seen running"
    assert store.count(ActivityFilter(ACCOUNT)) == 5  # none of the batch
    assert store.verify(ACCOUNT).ok
    assert store.append([event_at(T0)]).inserted == 1
