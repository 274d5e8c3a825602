"""The SQLite audit store's tables, and the one function that creates or upgrades them.

``events`` holds one row per stored event: the columns the filters read, the canonical bytes the
hash chain covers and the chain links. Its ``id`` (the rowid) is also the rowid of the event's
row in ``events_text``, the FTS5 index of its free text. ``account_chains`` holds each account's
chain head (last ``seq`` and hash) and where its chain starts once retention removed a prefix;
``retention_overrides`` the accounts that keep events longer (or shorter) than the default.
The version is SQLite's ``user_version``: a file written by a newer release is refused.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at_us INTEGER NOT NULL,
    category TEXT NOT NULL,
    activity TEXT NOT NULL,
    actor_user_id TEXT NOT NULL,
    actor_email TEXT,
    resource_type TEXT,
    resource_id TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    canonical BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (account_id, event_id),
    UNIQUE (account_id, seq)
);
-- The keyset order of every page, and one composite per filter that ends in that order, so a
-- filtered page reads its rows in order and stops after one page.
CREATE INDEX IF NOT EXISTS events_time ON events (account_id, occurred_at_us, event_id);
CREATE INDEX IF NOT EXISTS events_actor
    ON events (account_id, actor_user_id, occurred_at_us, event_id);
CREATE INDEX IF NOT EXISTS events_actor_email
    ON events (account_id, actor_email, occurred_at_us, event_id);
CREATE INDEX IF NOT EXISTS events_category
    ON events (account_id, category, occurred_at_us, event_id);
CREATE INDEX IF NOT EXISTS events_activity
    ON events (account_id, activity, occurred_at_us, event_id);
CREATE INDEX IF NOT EXISTS events_resource
    ON events (account_id, resource_type, resource_id, occurred_at_us, event_id);
CREATE VIRTUAL TABLE IF NOT EXISTS events_text
    USING fts5 (body, tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS account_chains (
    account_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    start_seq INTEGER NOT NULL,
    start_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_overrides (
    account_id TEXT PRIMARY KEY,
    days INTEGER NOT NULL CHECK (days > 0)
);
"""


class NewerSchema(Exception):
    """The file's schema version is newer than this release knows."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def migrate(conn: sqlite3.Connection) -> bool:
    """Create or upgrade the tables in one transaction; ``True`` when something changed.
    Raises ``NewerSchema`` for a file a newer release wrote (nothing is changed then)."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found == SCHEMA_VERSION:  # the usual case: no write lock taken to open a store
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise NewerSchema(found)
        if found == SCHEMA_VERSION:
            conn.execute("ROLLBACK")
            return False
        for statement in _V1.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
        return True
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
