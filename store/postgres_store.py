"""The audit store on PostgreSQL: the backend for deployments that outgrow one SQLite file.

A ``psycopg_pool.ConnectionPool`` serves every call; each write is one transaction. ``append``
locks the chain head of every account it writes (``SELECT ... FOR UPDATE`` on
``account_chains``, in account order) before it assigns ``seq`` and the chain hash, and holds
the lock until commit, so an account's events commit in ``seq`` order and a checkpoint reader
never sees seq 5 before seq 4. ``events`` is partitioned by month of the event time; retention
drops a month whose every row is expired and at the start of its account's chain, and deletes
the rest in bounded batches. Connection and statement timeouts bound every call, and psycopg's
errors become ``StoreError``/``StoreUnavailable`` saying what to do. The tables come from the
migrations (``migrate()``; ``auditstream store migrate``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import orjson
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from auditstream.store import postgres_schema
from auditstream.store.base import (
    DEFAULT_RETENTION_DAYS,
    AppendResult,
    CheckpointPage,
    Page,
    RetentionResult,
    StoredEvent,
    VerifyResult,
)
from auditstream.store.errors import InvalidEvent, StoreError, StoreUnavailable
from auditstream.store.event_columns import EventColumns, columns_of
from auditstream.store.hash_chain import GENESIS, ChainFault, ChainRow, first_fault, link
from auditstream.store.postgres_errors import connect_error, mapped
from auditstream.store.postgres_filters import (
    VISIBLE,
    after_cursor,
    filter_where,
    no_nul,
    order_by,
)
from auditstream.store.postgres_schema import END_MONTH, FIRST_MONTH, Month, month_named, month_of
from auditstream.store.postgres_text import document
from auditstream.store.query import (
    MAX_PAGE,
    ActivityFilter,
    Checkpoint,
    Cursor,
    Facets,
    Order,
    PageRequest,
    micros,
)
from auditstream.store.row_columns import CHECKED, ColumnCheck, mismatch

MAX_RETENTION_DAYS = 36_500
EXPORT_CHUNK = MAX_PAGE
MAX_KEY_BYTES = 500
"""The most UTF-8 bytes of one indexed value (ids, category, e-mail...): a B-tree entry holds
at most 2,704 bytes, and the widest index has five such columns."""

# Advisory lock keys (any bigint; fixed so every process agrees).
_MIGRATE_LOCK = 0x6175_6469_7473_0001
_PARTITION_LOCK = 0x6175_6469_7473_0002
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MONTH_US = Month(*FIRST_MONTH).lower_us
_END_MONTH_US = Month(*END_MONTH).lower_us
_COLUMNS: LiteralString = "account_id, event_id, occurred_at_us, seq, canonical, hash"
_CHECKED = ", ".join(CHECKED)
_COPY_EVENTS: LiteralString = (
    "COPY events (account_id, seq, event_id, occurred_at_us, category, activity, "
    "actor_user_id, actor_email, resource_type, resource_id, outcome, ip, search, canonical, "
    "prev_hash, hash) FROM STDIN"
)
_DROP_LOCK_TIMEOUT: LiteralString = "SET LOCAL lock_timeout = '2s'"
_KEY_FIELDS = (
    ("account_id", "account_id"),
    ("event_id", "event_id"),
    ("category", "category"),
    ("activity", "activity"),
    ("actor_user_id", "actor.user_id"),
    ("actor_email", "actor.email"),
    ("resource_type", "resource.type"),
    ("resource_id", "resource.id"),
    ("outcome", "outcome.status"),
    ("ip", "request.ip"),
)


@dataclass
class _Head:
    last_seq: int
    last_hash: str
    start_seq: int
    start_hash: str


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    _account_id, _event_id, occurred_at_us, seq, canonical, hash_ = row
    event = orjson.loads(canonical)
    # The ids as sent (the columns hold them without NUL characters).
    return StoredEvent(
        account_id=str(event.get("account_id", _account_id)),
        event_id=str(event.get("event_id", _event_id)),
        occurred_at=_EPOCH + timedelta(microseconds=occurred_at_us),
        seq=seq,
        event=event,
        hash=hash_,
    )


def _where(dsn: str) -> str:
    """The server named without its password. Raises ``StoreUnavailable`` for a DSN that is
    not one (without quoting it: it may hold the password)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise StoreUnavailable(
            "the audit store's DSN is not a PostgreSQL connection string: write it as "
            "postgresql://user:password@host:port/database"
        ) from None
    user = parts.get("user") or ""
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    database = parts.get("dbname") or user
    return f"postgresql://{user}@{host}:{port}/{database}"


def _check_sizes(col: EventColumns, index: int) -> None:
    for attribute, name in _KEY_FIELDS:
        value = getattr(col, attribute)
        # Four bytes a character at most: only a long value needs encoding to be measured.
        if (
            value is not None
            and len(value) > MAX_KEY_BYTES // 4
            and len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES
        ):
            raise InvalidEvent(
                f"event {index}: {name} is longer than {MAX_KEY_BYTES} bytes, more than the "
                "audit store indexes; shorten it at the producer"
            )


def _row(col: EventColumns, seq: int, prev_hash: str, hash_: str) -> tuple[Any, ...]:
    columns = (
        col.account_id,
        seq,
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
        document(col.text),
        col.canonical,
        prev_hash,
        hash_,
    )
    # The canonical JSON spells a NUL character \u0000: without one, no column holds any.
    if b"\\u0000" not in col.canonical:
        return columns
    return tuple(no_nul(v) if isinstance(v, str) else v for v in columns)


class PostgresStore:
    """The ``AuditStore`` in the PostgreSQL database at ``dsn``.

    Raises ``StoreUnavailable`` when the server cannot be reached or refuses the login (the
    message says which, without the password). The tables must exist: ``migrate()`` creates
    them; until then every call raises ``StoreUnavailable`` saying to run
    ``auditstream store migrate``. Every call waits at most ``connect_timeout_s`` for a
    connection and ``statement_timeout_s`` for a statement, then raises ``StoreError``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 8,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 60.0,
        lock_timeout_s: float = 10.0,
    ) -> None:
        self._where = _where(dsn)
        self._dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._connect_kwargs: dict[str, Any] = {
            "connect_timeout": max(2, round(connect_timeout_s)),
            "application_name": "auditstream-store",
            # A server that vanished from the network is noticed within ~30 s, not hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 30_000,
            "options": (
                f"-c statement_timeout={round(statement_timeout_s * 1000)} "
                f"-c lock_timeout={round(lock_timeout_s * 1000)}"
            ),
        }
        self._months: set[Month] = set()
        self._months_lock = threading.Lock()
        self._pool_size = pool_size
        self._pool_lock = threading.Lock()
        self._in_use = 0
        self._closed = False
        # One direct connection first: a wrong password or database is named now, not hidden
        # behind the pool's timeout.
        self._probe()
        self._pool = self._open_pool()

    # -- connections and errors -------------------------------------------------------------

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self._pool_size,
            kwargs={**self._connect_kwargs, "autocommit": True},
            timeout=self._connect_timeout_s,
            check=ConnectionPool.check_connection,
            name="auditstream-store",
            open=False,
        )
        try:
            pool.open(wait=True, timeout=self._connect_timeout_s * 2)
        except PoolTimeout:
            pool.close()
            raise self._unavailable("opening the store") from None
        return pool

    def _probe(self) -> None:
        try:
            with psycopg.connect(self._dsn, **self._connect_kwargs):
                pass
        except psycopg.Error as exc:
            raise connect_error(exc, self._where) from None

    def _unavailable(self, doing: str) -> StoreError:
        try:
            self._probe()
        except StoreUnavailable as exc:
            return exc
        return StoreUnavailable(
            f"no connection to PostgreSQL at {self._where} came free within "
            f"{self._connect_timeout_s:g} s while {doing}: every connection of the pool is "
            "busy; retry, or raise the store's pool size"
        )

    def _pooled(self) -> ConnectionPool[psycopg.Connection[Any]]:
        with self._pool_lock:
            if self._closed:
                raise StoreError("the audit store is closed; open it again")
            return self._pool

    def _recover_pool(self) -> bool:
        """After the pool gave no connection: when none of ours is in use and the server
        answers again, the pool is only waiting out its reconnection back-off (which grows to
        minutes over a long outage), so a new pool replaces it. ``False``: it stays."""
        with self._pool_lock:
            if self._closed or self._in_use >= self._pool_size:
                return False
        try:
            self._probe()
        except StoreUnavailable:
            return False
        fresh = self._open_pool()
        with self._pool_lock:
            old, self._pool = self._pool, fresh
        old.close(timeout=0)
        return True

    @contextmanager
    def _connection(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            for attempt in (1, 2):
                pool = self._pooled()
                try:
                    conn = pool.getconn()
                except PoolTimeout:
                    if attempt == 1 and self._recover_pool():
                        continue
                    raise self._unavailable(doing) from None
                break
        except PoolClosed:
            raise StoreError("the audit store is closed; open it again") from None
        with self._pool_lock:
            self._in_use += 1
        try:
            yield conn
        except psycopg.Error as exc:
            raise mapped(exc, doing, self._where) from exc
        finally:
            with self._pool_lock:
                self._in_use -= 1
            pool.putconn(conn)

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks, in order, under an advisory lock (safe to
        run twice and from several processes at once); returns the versions applied now.
        Raises ``StoreUnavailable`` for a database a newer release migrated."""
        known = postgres_schema.migrations()
        applied_now: list[int] = []
        with self._connection("applying migrations") as conn, conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = '120s'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            latest = max((m.version for m in known), default=0)
            if applied and max(applied) > latest:
                raise StoreUnavailable(
                    f"the audit store in {self._where} has schema version {max(applied)}, "
                    f"newer than this release knows ({latest}): run a newer auditstream"
                )
            for migration in known:
                if migration.version in applied:
                    continue
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                applied_now.append(migration.version)
        # This month and the next exist before the first event needs them.
        this_month = month_of(micros(datetime.now(UTC)))
        if this_month is not None:
            self._ensure_months({this_month})
        return applied_now

    def close(self) -> None:
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close(timeout=10)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- partitions -----------------------------------------------------------------------------

    def create_months(self, first: datetime, last: datetime) -> int:
        """Create ahead the month partitions from ``first`` to ``last`` (both included; months
        outside 2000-2099 have none); returns how many months that covers."""
        start, end = month_of(micros(first)), month_of(micros(last))
        if start is None or end is None:
            raise ValueError("months exist from 2000 to 2099 only")
        wanted = set()
        month = start
        while month <= end:
            wanted.add(month)
            month = month.next()
        self._ensure_months(wanted)
        return len(wanted)

    def _existing_months(self, conn: psycopg.Connection[Any]) -> set[Month]:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass"
        ).fetchall()
        return {m for (name,) in rows if (m := month_named(name)) is not None}

    def _ensure_months(self, months: set[Month]) -> None:
        """Create the partitions of ``months`` and of the month after each (so the next month
        is ready before its first event) that do not exist yet."""
        wanted = months | {m.next() for m in months}
        wanted = {m for m in wanted if month_named(m.name) is not None}
        with self._months_lock:
            missing = wanted - self._months
        if not missing:
            return
        with self._connection("creating month partitions") as conn:
            existing = self._existing_months(conn)
            for month in sorted(missing - existing):
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
                    if month in self._existing_months(conn):
                        continue
                    name = sql.Identifier(month.name)
                    # Created apart and attached: ATTACH needs only a SHARE UPDATE EXCLUSIVE
                    # lock on events, so readers and writers of other months go on.
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE {} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                        ).format(name)
                    )
                    conn.execute(
                        sql.SQL(
                            "ALTER TABLE events ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
                        ).format(name, sql.Literal(month.lower_us), sql.Literal(month.upper_us))
                    )
            with self._months_lock:
                self._months |= existing | missing

    # -- writes -------------------------------------------------------------------------------

    def append(self, events: Sequence[dict[str, Any]]) -> AppendResult:
        """Raises ``InvalidEvent`` (nothing stored) when an event lacks an indexed field or
        holds an indexed value over ``MAX_KEY_BYTES``."""
        columns = [columns_of(event, index) for index, event in enumerate(events)]
        for index, col in enumerate(columns):
            _check_sizes(col, index)
        if not columns:
            return AppendResult(0, 0)
        months = {m for col in columns if (m := month_of(col.occurred_at_us)) is not None}
        self._ensure_months(months)
        try:
            return self._append(columns)
        except StoreError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.CheckViolation):
                raise
        # A month dropped by retention in another process since this one saw it: make it again.
        with self._months_lock:
            self._months.clear()
        self._ensure_months(months)
        return self._append(columns)

    def _append(self, columns: list[EventColumns]) -> AppendResult:
        accounts = sorted({no_nul(col.account_id) for col in columns})
        with self._connection("storing events") as conn, conn.transaction():
            conn.execute(
                "INSERT INTO account_chains (account_id, last_seq, last_hash, start_seq, "
                "start_hash) SELECT a, 0, %s, 1, %s FROM unnest(%s::text[]) AS a "
                'ORDER BY a COLLATE "C" ON CONFLICT (account_id) DO NOTHING',
                (GENESIS, GENESIS, accounts),
            )
            heads = {
                account: _Head(*rest)
                for account, *rest in conn.execute(
                    "SELECT account_id, last_seq, last_hash, start_seq, start_hash "
                    "FROM account_chains WHERE account_id = ANY(%s) ORDER BY account_id "
                    "FOR UPDATE",
                    (accounts,),
                )
            }
            stored = self._stored_ids(conn, columns)
            rows: list[tuple[EventColumns, int, str, str]] = []
            changed: set[str] = set()
            duplicates = conflicts = 0
            for col in columns:
                account, event_id = no_nul(col.account_id), no_nul(col.event_id)
                if (account, event_id) in stored:
                    duplicates += 1
                    conflicts += stored[(account, event_id)] != col.canonical
                    continue
                stored[(account, event_id)] = col.canonical
                head = heads[account]
                seq, prev = head.last_seq + 1, head.last_hash
                head.last_seq, head.last_hash = seq, link(prev, col.canonical)
                rows.append((col, seq, prev, head.last_hash))
                changed.add(account)
            if rows:
                # Rows are finished (free text) as they are sent: the server stores one part
                # while this process builds the next.
                with conn.cursor().copy(_COPY_EVENTS) as copy:
                    for row in rows:
                        copy.write_row(_row(*row))
                ordered = sorted(changed)
                conn.execute(
                    "UPDATE account_chains AS c SET last_seq = u.seq, last_hash = u.hash "
                    "FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS u(account_id, seq, hash) "
                    "WHERE c.account_id = u.account_id",
                    (
                        ordered,
                        [heads[a].last_seq for a in ordered],
                        [heads[a].last_hash for a in ordered],
                    ),
                )
        return AppendResult(inserted=len(rows), duplicates=duplicates, conflicts=conflicts)

    @staticmethod
    def _stored_ids(
        conn: psycopg.Connection[Any], columns: list[EventColumns]
    ) -> dict[tuple[str, str], bytes]:
        """The ``(account, event_id)`` pairs of ``columns`` stored already, with the canonical
        bytes stored under each (looked up under the
        accounts' chain locks, so no other append can store one meanwhile). One index probe per
        id and month: the LATERAL ... LIMIT 1 keeps that plan even before a new month has
        statistics (an = ANY list then walked an account's whole month)."""
        keys = list({(no_nul(c.account_id), no_nul(c.event_id)) for c in columns})
        found = conn.execute(
            "SELECT k.a, k.i, stored.canonical FROM unnest(%s::text[], %s::text[]) AS k(a, i) "
            "JOIN LATERAL (SELECT e.canonical FROM events e WHERE e.account_id = k.a "
            "AND e.event_id = k.i LIMIT 1) AS stored ON true",
            ([a for a, _ in keys], [i for _, i in keys]),
            prepare=False,  # a generic plan of this join walks every partition whole
        ).fetchall()
        return {(a, i): bytes(canonical) for a, i, canonical in found}

    # -- reads --------------------------------------------------------------------------------

    def query(self, flt: ActivityFilter, page: PageRequest) -> Page:
        where = filter_where(flt)
        after_cursor(where, page.order, page.cursor)
        statement = sql.SQL("SELECT {} FROM events WHERE {} {} LIMIT %s").format(
            sql.SQL(_COLUMNS), where.sql, order_by(page.order)
        )
        with self._connection("reading events") as conn:
            rows = conn.execute(statement, [*where.params, page.limit + 1]).fetchall()
        events = [_stored(row) for row in rows[: page.limit]]
        more = len(rows) > page.limit
        if not (more and events):
            return Page(events=events, next_cursor=None)
        last = rows[page.limit - 1]
        return Page(events=events, next_cursor=Cursor(last[2], last[1]))

    def count(self, flt: ActivityFilter) -> int:
        where = filter_where(flt)
        statement = sql.SQL("SELECT count(*) FROM events WHERE {}").format(where.sql)
        with self._connection("counting events") as conn:
            row = conn.execute(statement, where.params).fetchone()
        return int(row[0]) if row else 0

    def facets(self, flt: ActivityFilter) -> Facets:
        where = filter_where(flt, with_kinds=False)
        statement = sql.SQL(
            "SELECT GROUPING(category), category, activity, count(*) FROM events WHERE {} "
            "GROUP BY GROUPING SETS ((category), (activity))"
        ).format(where.sql)
        with self._connection("counting facets") as conn:
            rows = conn.execute(statement, where.params).fetchall()
        categories: dict[str, int] = {}
        activities: dict[str, int] = {}
        for grouped_away, category, activity, n in rows:
            if grouped_away:
                activities[activity] = int(n)
            else:
                categories[category] = int(n)
        return Facets(categories=categories, activities=activities)

    def after(self, account_id: str, checkpoint: Checkpoint, limit: int) -> CheckpointPage:
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        with self._connection("reading events after a checkpoint") as conn:
            rows = conn.execute(
                sql.SQL(
                    "SELECT {} FROM events WHERE account_id = %s AND seq > %s AND {} "
                    "ORDER BY seq LIMIT %s"
                ).format(sql.SQL(_COLUMNS), sql.SQL(VISIBLE)),
                (no_nul(account_id), checkpoint.seq, no_nul(account_id), limit),
            ).fetchall()
        events = [_stored(row) for row in rows]
        return CheckpointPage(
            events=events, checkpoint=Checkpoint(events[-1].seq) if events else checkpoint
        )

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        with self._connection("reading an event") as conn:
            row = conn.execute(
                sql.SQL(
                    "SELECT {} FROM events WHERE account_id = %s AND event_id = %s AND {} LIMIT 1"
                ).format(sql.SQL(_COLUMNS), sql.SQL(VISIBLE)),
                (no_nul(account_id), no_nul(event_id), no_nul(account_id)),
            ).fetchone()
        return None if row is None else _stored(row)

    def export(self, flt: ActivityFilter, order: Order = "desc") -> Iterator[StoredEvent]:
        """A server-side cursor read ``EXPORT_CHUNK`` rows at a time; it holds one pooled
        connection (and its snapshot) until the iterator ends or is closed."""
        where = filter_where(flt)
        statement = sql.SQL("SELECT {} FROM events WHERE {} {}").format(
            sql.SQL(_COLUMNS), where.sql, order_by(order)
        )
        with (
            self._connection("exporting events") as conn,
            conn.transaction(),
            conn.cursor(name="auditstream_export") as cursor,
        ):
            cursor.itersize = EXPORT_CHUNK
            cursor.execute(statement, where.params)
            while chunk := cursor.fetchmany(EXPORT_CHUNK):
                yield from (_stored(row) for row in chunk)

    def accounts(self) -> list[str]:
        with self._connection("listing accounts") as conn:
            rows = conn.execute("SELECT account_id FROM account_chains ORDER BY account_id")
            return [account for (account,) in rows]

    # -- retention ----------------------------------------------------------------------------

    def set_retention(self, account_id: str, days: int | None) -> None:
        """Raises ``ValueError`` for days outside 1..36,500."""
        if days is not None and (
            isinstance(days, bool)
            or not isinstance(days, int)
            or not 1 <= days <= MAX_RETENTION_DAYS
        ):
            raise ValueError(
                f"retention days must be a whole number from 1 to {MAX_RETENTION_DAYS}"
            )
        with self._connection("setting a retention") as conn:
            if days is None:
                conn.execute(
                    "DELETE FROM retention_overrides WHERE account_id = %s", (no_nul(account_id),)
                )
            else:
                conn.execute(
                    "INSERT INTO retention_overrides (account_id, days) VALUES (%s, %s) "
                    "ON CONFLICT (account_id) DO UPDATE SET days = excluded.days",
                    (no_nul(account_id), days),
                )

    def retention_days(self, account_id: str) -> int:
        with self._connection("reading a retention") as conn:
            row = conn.execute(
                "SELECT days FROM retention_overrides WHERE account_id = %s",
                (no_nul(account_id),),
            ).fetchone()
        return DEFAULT_RETENTION_DAYS if row is None else int(row[0])

    def apply_retention(self, now: datetime, batch_size: int = 10_000) -> RetentionResult:
        """Each account's expired chain prefix goes first from every read (its chain start
        moves past it), at most ``batch_size`` rows a call. Its rows in months older than the
        longest retention of any account stay on disk until no row of their month is kept,
        then the month is dropped whole (one statement, however many rows); other rows are
        deleted at once."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        whole_months_before = self._whole_months_before(now)
        budget, deleted, touched, complete = batch_size, 0, 0, True
        for account in self.accounts():
            cutoff = micros(now - timedelta(days=self.retention_days(account)))
            removed, more = self._expire_prefix(account, cutoff, budget, whole_months_before)
            if removed:
                deleted, touched, budget = deleted + removed, touched + 1, budget - removed
            if more:
                complete = False
                break
        self._drop_unkept_months(whole_months_before)
        return RetentionResult(deleted=deleted, accounts=touched, complete=complete)

    def _whole_months_before(self, now: datetime) -> int:
        """Rows before this time (``occurred_at_us``) go with their month: every month before
        it is past the longest retention of any account, so each of its rows is expired."""
        with self._connection("reading retentions") as conn:
            row = conn.execute("SELECT COALESCE(max(days), 0) FROM retention_overrides").fetchone()
        longest = max(DEFAULT_RETENTION_DAYS, int(row[0]) if row else 0)
        horizon = micros(now - timedelta(days=longest))
        month = month_of(horizon)
        if month is not None:
            return month.lower_us
        return _FIRST_MONTH_US if horizon < _FIRST_MONTH_US else _END_MONTH_US

    def _expire_prefix(
        self, account: str, cutoff_us: int, budget: int, whole_months_before: int
    ) -> tuple[int, bool]:
        """Remove the account's longest run of rows from its chain start that are all older
        than ``cutoff_us`` (at most ``budget``); returns the rows removed and whether more
        expired rows wait beyond the budget."""
        with self._connection("deleting expired events") as conn, conn.transaction():
            head_row = conn.execute(
                "SELECT last_seq, last_hash, start_seq, start_hash FROM account_chains "
                "WHERE account_id = %s FOR UPDATE",
                (account,),
            ).fetchone()
            if head_row is None:
                return 0, False
            head = _Head(*head_row)
            rows = conn.execute(
                f"SELECT seq, occurred_at_us, hash, prev_hash, canonical, {_CHECKED} "  # noqa: S608
                "FROM events WHERE account_id = %s AND seq >= %s ORDER BY seq LIMIT %s",
                (account, head.start_seq, budget + 1),
            ).fetchall()
            expected, previous, prefix = head.start_seq, head.start_hash, []
            for seq, occurred_at_us, hash_, prev_hash, canonical, *columns in rows:
                # A gap, a row that does not chain, or columns that are not what its hashed
                # JSON says (a time moved into the past) stop retention there: the evidence
                # stays for verify to report, and no edit makes retention delete a row early.
                content = bytes(canonical)
                if (
                    seq != expected
                    or occurred_at_us >= cutoff_us
                    or prev_hash != previous
                    or link(previous, content) != hash_
                    or mismatch(content, columns, _as_stored) is not None
                ):
                    break
                prefix.append(seq)
                expected, previous = expected + 1, hash_
            if not prefix:
                return 0, False
            more = len(prefix) > budget
            prefix = prefix[:budget]
            last_seq = prefix[-1]
            found = conn.execute(
                "SELECT hash FROM events WHERE account_id = %s AND seq = %s",
                (account, last_seq),
            ).fetchone()
            if found is None:  # removed meanwhile behind the store's back
                return 0, False
            # Rows in months that go whole later stay (unseen: reads start at start_seq);
            # the others, the events-other partition's included, go now.
            conn.execute(
                "DELETE FROM events WHERE account_id = %s AND seq BETWEEN %s AND %s "
                "AND (occurred_at_us >= %s OR occurred_at_us < %s)",
                (account, head.start_seq, last_seq, whole_months_before, _FIRST_MONTH_US),
            )
            conn.execute(
                "UPDATE account_chains SET start_seq = %s, start_hash = %s WHERE account_id = %s",
                (last_seq + 1, found[0], account),
            )
        return len(prefix), more

    def _drop_unkept_months(self, whole_months_before: int) -> None:
        """Drop the months before ``whole_months_before`` that keep no row (every row of
        every account in them lies before the account's chain start)."""
        with self._connection("listing month partitions") as conn:
            months = sorted(self._existing_months(conn))
        for month in months:
            if month.upper_us > whole_months_before:
                break
            if self._drop_if_unkept(month):
                with self._months_lock:
                    self._months.discard(month)

    def _drop_if_unkept(self, month: Month) -> bool:
        table = sql.Identifier(month.name)
        try:
            with self._connection("dropping an expired month") as conn, conn.transaction():
                conn.execute(_DROP_LOCK_TIMEOUT)
                # No row enters the month while it is judged.
                conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(table))
                kept = conn.execute(
                    sql.SQL(
                        "WITH RECURSIVE a AS (SELECT min(account_id) AS id FROM {0} "
                        "UNION ALL SELECT (SELECT min(account_id) FROM {0} "
                        "WHERE account_id > a.id) FROM a WHERE a.id IS NOT NULL) "
                        "SELECT 1 FROM a JOIN account_chains c ON c.account_id = a.id "
                        "WHERE (SELECT max(seq) FROM {0} e WHERE e.account_id = a.id) "
                        ">= c.start_seq LIMIT 1"
                    ).format(table)
                ).fetchone()
                if kept is not None:
                    return False
                conn.execute(sql.SQL("ALTER TABLE events DETACH PARTITION {}").format(table))
                conn.execute(sql.SQL("DROP TABLE {}").format(table))
                return True
        except StoreError as exc:
            # Readers hold the table (next time), or another process dropped it first.
            if isinstance(
                exc.__cause__, psycopg.errors.LockNotAvailable | psycopg.errors.UndefinedTable
            ):
                return False
            raise

    # -- verification -------------------------------------------------------------------------

    def verify(self, account_id: str) -> VerifyResult:
        account_id = no_nul(account_id)
        with self._connection("reading the chain head") as conn:
            head_row = conn.execute(
                "SELECT last_seq, last_hash, start_seq, start_hash FROM account_chains "
                "WHERE account_id = %s",
                (account_id,),
            ).fetchone()
        head = _Head(0, GENESIS, 1, GENESIS) if head_row is None else _Head(*head_row)
        walk, checked = _Walk(), ColumnCheck(_as_stored)
        rows = checked.rows(self._chain_rows(account_id, head.start_seq))
        fault = first_fault(walk.rows(rows), head.start_seq, head.start_hash)
        return checked.earlier(_verdict(account_id, head, walk, fault))

    def _chain_rows(self, account_id: str, start_seq: int) -> Iterator[tuple[ChainRow, list[Any]]]:
        # Rows before the chain start are retention's, gone from reads (see apply_retention).
        after = start_seq - 1
        while True:
            with self._connection("reading the chain") as conn:
                rows = conn.execute(
                    f"SELECT seq, prev_hash, hash, canonical, {_CHECKED} FROM events "  # noqa: S608
                    "WHERE account_id = %s AND seq > %s ORDER BY seq LIMIT %s",
                    (account_id, after, EXPORT_CHUNK),
                ).fetchall()
            for seq, prev_hash, hash_, canonical, *columns in rows:
                yield ChainRow(seq, prev_hash, hash_, bytes(canonical)), columns
            if len(rows) < EXPORT_CHUNK:
                return
            after = rows[-1][0]


def _as_stored(value: object) -> object:
    """A JSON value as the columns keep it (text without NUL characters)."""
    return no_nul(value) if isinstance(value, str) else value


def _verdict(account_id: str, head: _Head, walk: _Walk, fault: ChainFault | None) -> VerifyResult:
    if fault is not None:
        return VerifyResult(account_id, walk.count, False, fault.seq, fault.problem, fault.detail)
    # The walk checks each row against the one before; the head checks the end, so rows
    # removed or added after the last row are found too.
    next_seq = walk.last_seq + 1 if walk.count else head.start_seq
    if next_seq <= head.last_seq:
        return VerifyResult(
            account_id,
            walk.count,
            False,
            next_seq,
            "removed",
            f"rows {next_seq}..{head.last_seq} are missing (the chain ends at {head.last_seq})",
        )
    if next_seq > head.last_seq + 1 or (walk.count and walk.last_hash != head.last_hash):
        return VerifyResult(
            account_id,
            walk.count,
            False,
            min(next_seq - 1, head.last_seq + 1),
            "inserted",
            f"the chain ends at {head.last_seq}, yet rows up to {next_seq - 1} follow it",
        )
    return VerifyResult(account_id, walk.count, True)


class _Walk:
    """Counts the rows a chain walk read and remembers the last."""

    def __init__(self) -> None:
        self.count = 0
        self.last_seq = 0
        self.last_hash: str | None = None

    def rows(self, rows: Iterator[ChainRow]) -> Iterator[ChainRow]:
        for row in rows:
            self.count += 1
            self.last_seq, self.last_hash = row.seq, row.hash
            yield row
