"""The embedded log: topics, offsets and consumer groups in one SQLite file (WAL mode).

The zero-setup default for one machine: durable across restarts, same topics and offsets as
Kafka, no network and no replication. A group's consumers are not balanced against each other:
one consumer of a group reads every partition of its subscription (run one per group).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import resource
import shutil
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from re import Pattern

import orjson

from auditstream.pipeline.errors import LogError, LogFull, RecordRefused, Refusal
from auditstream.pipeline.log import (
    Consumer,
    DeliveryCallback,
    Headers,
    OutgoingRecord,
    Record,
    TopicPartition,
    metadata_of,
)
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES, record_size

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, compacted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
    key BLOB, value BLOB NOT NULL, headers BLOB, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, part, off)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (grp, topic, part)
) WITHOUT ROWID;
"""


def _add_offset_metadata(conn: sqlite3.Connection) -> None:
    """Files made before offsets carried metadata get the column (empty for their rows)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(group_offsets)")}
    if "metadata" not in columns:
        conn.execute("ALTER TABLE group_offsets ADD COLUMN metadata TEXT NOT NULL DEFAULT ''")


_POLL_INTERVAL_S = 0.02
_TOPIC_REFRESH_S = 1.0


def _encode_headers(headers: Headers) -> bytes | None:
    if not headers:
        return None
    return orjson.dumps([[k, v.decode("latin-1")] for k, v in headers])


def _decode_headers(raw: bytes | None) -> Headers:
    if not raw:
        return ()
    return tuple((k, v.encode("latin-1")) for k, v in orjson.loads(raw))


def check_sizes(records: Sequence[OutgoingRecord], max_bytes: int) -> None:
    """Raises :class:`RecordRefused` (reason ``too_large``) naming every record of
    ``records`` over ``max_bytes``: the same limit, counted the same way, as on Kafka."""
    refusals = []
    for i, r in enumerate(records):
        size = record_size(r.key, r.value, r.headers)
        if size > max_bytes:
            detail = f"record of {size} bytes is over the {max_bytes} byte limit"
            refusals.append(Refusal(i, "too_large", detail, permanent=True))
    if refusals:
        raise RecordRefused(refusals)


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_LOW_SPACE_BYTES = 1 << 20
"""Below this much free space a failed write is taken for a full file system."""


def _out_of_room(path: Path) -> str | None:
    """Why writes to ``path`` can fail for lack of room (its file system nearly full, or a
    file of it at this process's file size limit), or None."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < _LOW_SPACE_BYTES:
        return f"{free} bytes free on its file system"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
            try:
                size = name.stat().st_size
            except OSError:
                continue
            # SQLite writes a page (at most 64 KiB) at a time: a file this close to the
            # limit could not take the next one.
            if size + 65536 > limit:
                return f"{name.name} at the file size limit of {limit} bytes"
    return None


def storage_error(path: Path, exc: sqlite3.Error | OSError, doing: str) -> LogError:
    """``exc`` (from SQLite or the OS) as the log's error: :class:`LogFull` when the storage
    is full (SQLITE_FULL, ENOSPC, EFBIG, EDQUOT, or an I/O error while the file system is
    full or a file is at the size limit, which is how SQLite reports EFBIG), else
    :class:`LogError`, both naming ``path``."""
    if isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            return LogFull(str(path), os.strerror(exc.errno or 0))
        return LogError(f"embedded log {path}: {doing}: {exc}")
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return LogFull(str(path), str(exc))
    if code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
        room = _out_of_room(path)
        if room is not None:
            return LogFull(str(path), f"{exc}; {room}")
    return LogError(f"embedded log {path}: {doing}: {exc}")


def _partition_for(key: bytes | None, partitions: int) -> int:
    if partitions <= 1 or key is None:
        return 0
    return zlib.crc32(key) % partitions


class EmbeddedLog:
    """A :class:`pipeline.log.Log` on a SQLite file. Thread-safe: one connection per user.
    Records over ``max_record_bytes`` are refused as Kafka refuses them."""

    name = "embedded"

    def __init__(self, path: Path | str, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.path = Path(path)
        self.max_record_bytes = max_record_bytes
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection().executescript(_SCHEMA)
            _add_offset_metadata(self.connection())
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(self.path, exc, "cannot create its tables") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode is durable against process crashes (not power loss).
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise storage_error(self.path, exc, "cannot open it") from exc
        return conn

    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    # topics ---------------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int = 1, compacted: bool = False) -> None:
        conn = self.connection()
        with _write(conn, self.path):
            conn.execute(
                "INSERT OR IGNORE INTO topics(name, partitions, compacted) VALUES (?, ?, ?)",
                (topic, partitions, int(compacted)),
            )

    def delete_topic(self, topic: str) -> None:
        conn = self.connection()
        with _write(conn, self.path):
            conn.execute("DELETE FROM topics WHERE name = ?", (topic,))
            conn.execute("DELETE FROM records WHERE topic = ?", (topic,))
            conn.execute("DELETE FROM group_offsets WHERE topic = ?", (topic,))

    def list_topics(self) -> set[str]:
        return {r[0] for r in self.connection().execute("SELECT name FROM topics")}

    def partitions(self, topic: str) -> int:
        row = (
            self.connection()
            .execute("SELECT partitions FROM topics WHERE name = ?", (topic,))
            .fetchone()
        )
        if row is None:
            raise LogError(f"topic {topic!r} does not exist")
        return int(row[0])

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        n = self.partitions(topic)
        out = {TopicPartition(topic, p): 0 for p in range(n)}
        for part, top in self.connection().execute(
            "SELECT part, MAX(off) FROM records WHERE topic = ? GROUP BY part", (topic,)
        ):
            out[TopicPartition(topic, part)] = int(top) + 1
        return out

    # writing --------------------------------------------------------------------------------

    def append(
        self,
        conn: sqlite3.Connection,
        records: Sequence[OutgoingRecord],
        partitions: dict[str, int],
    ) -> None:
        """Append ``records`` inside the caller's write transaction. Raises
        :class:`RecordRefused` (nothing appended) if any is over the size limit."""
        check_sizes(records, self.max_record_bytes)
        now = int(time.time() * 1000)
        next_off: dict[tuple[str, int], int] = {}
        rows = []
        for r in records:
            n = partitions.get(r.topic)
            if n is None:
                n = self.partitions(r.topic)
                partitions[r.topic] = n
            part = _partition_for(r.key, n)
            k = (r.topic, part)
            off = next_off.get(k)
            if off is None:
                row = conn.execute(
                    "SELECT MAX(off) FROM records WHERE topic = ? AND part = ?", k
                ).fetchone()
                off = 0 if row[0] is None else int(row[0]) + 1
            next_off[k] = off + 1
            rows.append((r.topic, part, off, r.key, r.value, _encode_headers(r.headers), now))
        conn.executemany(
            "INSERT INTO records(topic, part, off, key, value, headers, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def producer(self) -> EmbeddedProducer:
        return EmbeddedProducer(self)

    def transactional_producer(self, transactional_id: str) -> EmbeddedTransactionalProducer:
        return EmbeddedTransactionalProducer(self)

    # reading --------------------------------------------------------------------------------

    def consumer(self, group: str, topics: Sequence[str] | Pattern[str]) -> EmbeddedConsumer:
        return EmbeddedConsumer(self, group, topics)

    def committed_offsets(self, group: str, topic: str) -> dict[TopicPartition, int]:
        rows = self.connection().execute(
            "SELECT part, next_off FROM group_offsets WHERE grp = ? AND topic = ?", (group, topic)
        )
        return {TopicPartition(topic, int(p)): int(o) for p, o in rows}

    def timestamp_at(self, tp: TopicPartition, offset: int) -> int | None:
        row = (
            self.connection()
            .execute(
                "SELECT ts FROM records WHERE topic = ? AND part = ? AND off >= ?"
                " ORDER BY off LIMIT 1",
                (tp.topic, tp.partition, offset),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        row = (
            self.connection()
            .execute(
                "SELECT MIN(off) FROM records WHERE topic = ? AND part = ? AND ts >= ?",
                (tp.topic, tp.partition, timestamp_ms),
            )
            .fetchone()
        )
        if row is None or row[0] is None:
            return self.end_offsets(tp.topic).get(tp, 0)
        return int(row[0])

    def reader(self, topic: str) -> EmbeddedConsumer:
        return EmbeddedConsumer(self, None, [topic])

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _write:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error: one writer at a time, and
    a write that raises stored nothing. SQLite and OS errors (from the body too) are raised as
    :func:`storage_error` (:class:`LogFull` when the storage is full)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise storage_error(self.path, exc, "cannot start a write") from exc
        return self.conn

    def _rollback(self) -> None:
        # SQLite rolls a transaction back by itself after some errors (SQLITE_FULL among
        # them): a ROLLBACK then fails with "no transaction is active", hiding the cause.
        if self.conn.in_transaction:
            # The write's own error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._rollback()
                raise storage_error(self.path, err, "commit failed") from err
            return
        self._rollback()
        if isinstance(exc, sqlite3.Error | OSError):
            raise storage_error(self.path, exc, "write failed") from exc


class EmbeddedProducer:
    """Buffers records and writes them in one SQLite transaction per batch."""

    _BATCH = 1000

    def __init__(self, log: EmbeddedLog) -> None:
        self._log = log
        self._pending: list[tuple[OutgoingRecord, DeliveryCallback | None]] = []
        self._partitions: dict[str, int] = {}

    def produce(self, record: OutgoingRecord, on_delivery: DeliveryCallback | None = None) -> None:
        """Queue ``record``. Raises :class:`RecordRefused` for a record over the size limit,
        as the Kafka client does before sending."""
        check_sizes([record], self._log.max_record_bytes)
        self._pending.append((record, on_delivery))
        if len(self._pending) >= self._BATCH:
            self.flush()

    def flush(self, timeout: float = 30.0) -> int:
        if not self._pending:
            return 0
        batch, self._pending = self._pending, []
        error: Exception | None = None
        conn = self._log.connection()
        try:
            with _write(conn, self._log.path):
                self._log.append(conn, [r for r, _ in batch], self._partitions)
        except LogError as exc:
            error = exc
        for record, callback in batch:
            if callback is not None:
                callback(error, record)
        return 0

    def close(self) -> None:
        self.flush()


class EmbeddedTransactionalProducer:
    """Records and group offsets written in one SQLite transaction."""

    def __init__(self, log: EmbeddedLog) -> None:
        self._log = log
        self._partitions: dict[str, int] = {}

    def produce_and_commit(
        self,
        records: Sequence[OutgoingRecord],
        consumer: Consumer,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        conn = self._log.connection()
        with _write(conn, self._log.path):
            if records:
                self._log.append(conn, records, self._partitions)
            _commit_offsets(conn, consumer.group, offsets)

    def produce_atomically(self, records: Sequence[OutgoingRecord]) -> None:
        conn = self._log.connection()
        with _write(conn, self._log.path):
            self._log.append(conn, records, self._partitions)

    def close(self) -> None:
        return None


def _commit_offsets(
    conn: sqlite3.Connection, group: str, offsets: Mapping[TopicPartition, int]
) -> None:
    conn.executemany(
        "INSERT INTO group_offsets(grp, topic, part, next_off, metadata) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(grp, topic, part) DO UPDATE SET next_off = excluded.next_off, "
        "metadata = excluded.metadata",
        [
            (group, tp.topic, tp.partition, int(off), metadata_of(off))
            for tp, off in offsets.items()
        ],
    )


class EmbeddedConsumer:
    """Reads every partition of its subscription; positions start at the committed offsets."""

    def __init__(
        self, log: EmbeddedLog, group: str | None, topics: Sequence[str] | Pattern[str]
    ) -> None:
        self._log = log
        self.group = group or ""
        self._groupless = group is None
        self._topics = topics
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._refreshed_at = 0.0
        self._revoke_callbacks: list[Callable[[set[TopicPartition]], None]] = []
        self._rr = 0
        self._refresh(force=True)

    def _matches(self, topic: str) -> bool:
        if isinstance(self._topics, re.Pattern):
            return bool(self._topics.match(topic))
        return topic in self._topics

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._refreshed_at < _TOPIC_REFRESH_S:
            return
        self._refreshed_at = now
        conn = self._log.connection()
        current: set[TopicPartition] = set()
        for name, parts in conn.execute("SELECT name, partitions FROM topics"):
            if self._matches(name):
                current.update(TopicPartition(name, p) for p in range(parts))
        gone = set(self._positions) - current
        if gone:
            for tp in gone:
                self._positions.pop(tp, None)
                self._paused.discard(tp)
            for cb in self._revoke_callbacks:
                cb(gone)
        new = current - set(self._positions)
        if new:
            committed = self.committed(new)
            for tp in new:
                self._positions[tp] = committed.get(tp, 0)

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        deadline = time.monotonic() + timeout
        conn = self._log.connection()
        while True:
            self._refresh()
            active = [tp for tp in self._positions if tp not in self._paused]
            out: list[Record] = []
            if active:
                start = self._rr % len(active)
                self._rr += 1
                for tp in active[start:] + active[:start]:
                    if len(out) >= max_records:
                        break
                    rows = conn.execute(
                        "SELECT off, key, value, headers, ts FROM records "
                        "WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?",
                        (tp.topic, tp.partition, self._positions[tp], max_records - len(out)),
                    ).fetchall()
                    for off, key, value, headers, ts in rows:
                        out.append(
                            Record(
                                tp.topic,
                                tp.partition,
                                off,
                                key,
                                value,
                                _decode_headers(headers),
                                ts,
                            )
                        )
                    if rows:
                        self._positions[tp] = rows[-1][0] + 1
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(_POLL_INTERVAL_S)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._groupless or not offsets:
            return
        conn = self._log.connection()
        with _write(conn, self._log.path):
            _commit_offsets(conn, self.group, offsets)

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        if self._groupless:
            return {}
        conn = self._log.connection()
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            row = conn.execute(
                "SELECT next_off FROM group_offsets WHERE grp = ? AND topic = ? AND part = ?",
                (self.group, tp.topic, tp.partition),
            ).fetchone()
            if row is not None:
                out[tp] = int(row[0])
        return out

    def committed_metadata(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        if self._groupless:
            return {}
        conn = self._log.connection()
        out: dict[TopicPartition, str] = {}
        for tp in partitions:
            row = conn.execute(
                "SELECT metadata FROM group_offsets WHERE grp = ? AND topic = ? AND part = ?",
                (self.group, tp.topic, tp.partition),
            ).fetchone()
            if row is not None:
                out[tp] = str(row[0])
        return out

    def assignment(self) -> set[TopicPartition]:
        self._refresh()
        return set(self._positions)

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._paused.update(partitions)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._positions:
            self._positions[tp] = offset

    def position(self, tp: TopicPartition) -> int:
        self._refresh()
        return self._positions.get(tp, 0)

    def on_revoke(self, callback: Callable[[set[TopicPartition]], None]) -> None:
        self._revoke_callbacks.append(callback)

    def close(self) -> None:
        return None
