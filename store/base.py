"""The audit store: the searchable activity audit log of every account (one small interface,
two backends -- embedded SQLite and PostgreSQL -- like ``pipeline.log`` has two logs).

Every method either does all it says or raises ``StoreError`` having changed nothing. Events are
kept per account in the order the store received them (``seq``, 1, 2, 3... per account) and
chained: each row holds the SHA-256 of its canonical bytes and of the previous row's hash
(``store.hash_chain``), so ``verify`` names the first row altered, removed or inserted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from auditstream.store.query import ActivityFilter, Checkpoint, Cursor, Facets, Order, PageRequest

DEFAULT_RETENTION_DAYS = 365
"""Events are kept one year from the event (``occurred_at``) unless an account asks longer."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as stored: ``event`` is the decoded ``ActivityEvent`` as JSON values
    (ISO-8601 UTC timestamps with a ``Z``, ids as strings: what ``store.canonical`` makes);
    ``seq`` its place in the account's receive order; ``hash`` the chain hash of its row."""

    account_id: str
    event_id: str
    occurred_at: datetime
    seq: int
    event: dict[str, Any]
    hash: str


@dataclass(frozen=True, slots=True)
class AppendResult:
    inserted: int
    duplicates: int  # already stored under the same (account, event_id): stored once
    conflicts: int = 0
    """Of the duplicates, those whose content is not the stored event's: the stored one is
    kept (an event is never replaced), and the caller should say so."""


@dataclass(frozen=True, slots=True)
class Page:
    events: list[StoredEvent]
    next_cursor: Cursor | None  # None: no more events in this direction right now


@dataclass(frozen=True, slots=True)
class CheckpointPage:
    events: list[StoredEvent]  # in receive order (seq ascending)
    checkpoint: Checkpoint  # pass back to continue; unchanged when nothing new


@dataclass(frozen=True, slots=True)
class RetentionResult:
    deleted: int
    accounts: int  # accounts that lost at least one event
    complete: bool  # False: more expired events remain (bounded by the batch size)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``ok`` or the first bad row: its ``seq`` and what is wrong there (``altered``,
    ``removed``, ``inserted``, ``reordered``)."""

    account_id: str
    rows: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None
    detail: str | None = None


class AuditStore(Protocol):
    def append(self, events: Sequence[dict[str, Any]]) -> AppendResult:
        """Store decoded ``ActivityEvent``s atomically (all or none); an event whose
        ``(account_id, event_id)`` is stored already is skipped and counted as a duplicate."""
        ...

    def query(self, flt: ActivityFilter, page: PageRequest) -> Page:
        """One page of ``flt`` in ``(occurred_at, event_id)`` order after ``page.cursor``."""
        ...

    def count(self, flt: ActivityFilter) -> int: ...

    def facets(self, flt: ActivityFilter) -> Facets:
        """Counts per category and per activity of ``flt`` ignoring its own category and
        activity conditions (the menus show what else could be picked)."""
        ...

    def after(self, account_id: str, checkpoint: Checkpoint, limit: int) -> CheckpointPage:
        """Events received after ``checkpoint``, in receive order, at most ``limit``."""
        ...

    def get(self, account_id: str, event_id: str) -> StoredEvent | None: ...

    def export(self, flt: ActivityFilter, order: Order = "desc") -> Iterator[StoredEvent]:
        """Every event of ``flt``, read in bounded chunks (never the whole result in memory).
        Closing the iterator early releases what it holds."""
        ...

    def set_retention(self, account_id: str, days: int | None) -> None:
        """Keep ``account_id``'s events ``days`` from the event (``None``: the default)."""
        ...

    def retention_days(self, account_id: str) -> int: ...

    def apply_retention(self, now: datetime, batch_size: int = 10_000) -> RetentionResult:
        """Delete events older than their account's retention at ``now``, oldest first, at
        most ``batch_size``; records the hash at which each kept chain now starts."""
        ...

    def verify(self, account_id: str) -> VerifyResult: ...

    def accounts(self) -> list[str]: ...

    def close(self) -> None: ...
