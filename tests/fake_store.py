"""A small in-memory ``AuditStore`` for unit tests of the query API (the real backends have
their own contract tests). It filters, pages and counts like the contract says, in plain
Python, and counts export iterators opened and closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from auditstream.store.base import (
    AppendResult,
    CheckpointPage,
    Page,
    RetentionResult,
    StoredEvent,
    VerifyResult,
)
from auditstream.store.canonical import json_values
from auditstream.store.errors import StoreUnavailable
from auditstream.store.query import (
    ActivityFilter,
    Checkpoint,
    Cursor,
    Facets,
    Order,
    PageRequest,
    micros,
)


def _matches(flt: ActivityFilter, e: StoredEvent, *, menus: bool = False) -> bool:
    ev = e.event
    actor = ev.get("actor") or {}
    resource = ev.get("resource") or {}
    request = ev.get("request") or {}
    if e.account_id != flt.account_id:
        return False
    if flt.actors and not any(
        a == actor.get("user_id") or a.lower() == (actor.get("email") or "").lower()
        for a in flt.actors
    ):
        return False
    if not menus and flt.categories and ev["category"] not in flt.categories:
        return False
    if not menus and flt.activities and ev["activity"] not in flt.activities:
        return False
    if flt.resource_type and resource.get("type") != flt.resource_type:
        return False
    if flt.resource_id and resource.get("id") != flt.resource_id:
        return False
    if flt.outcome and ev["outcome"]["status"] != flt.outcome:
        return False
    if flt.ip and request.get("ip") != flt.ip:
        return False
    if flt.since and e.occurred_at < flt.since:
        return False
    if flt.until and e.occurred_at >= flt.until:
        return False
    if flt.text:
        hay = " ".join(
            str(v or "")
            for v in (
                actor.get("name"),
                actor.get("email"),
                resource.get("name"),
                resource.get("id"),
                ev["activity"],
                *(ev.get("details") or {}).values(),
            )
        ).lower()
        if flt.text.lower() not in hay:
            return False
    return True


def _key(e: StoredEvent) -> tuple[int, str]:
    return (micros(e.occurred_at), e.event_id)


class FakeStore:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.lock = threading.Lock()
        self.broken = False
        self.exports_opened = 0
        self.exports_closed = 0

    def _check(self) -> None:
        if self.broken:
            raise StoreUnavailable("the fake store at postgresql://user:hunter2@db is away")

    def append(self, events: Sequence[dict[str, Any]]) -> AppendResult:
        self._check()
        inserted = duplicates = 0
        with self.lock:
            for raw in events:
                ev = json_values(raw)
                if any(
                    s.account_id == ev["account_id"] and s.event_id == ev["event_id"]
                    for s in self.events
                ):
                    duplicates += 1
                    continue
                seq = 1 + sum(1 for s in self.events if s.account_id == ev["account_id"])
                occurred = raw["occurred_at"]
                assert isinstance(occurred, datetime)
                self.events.append(
                    StoredEvent(ev["account_id"], ev["event_id"], occurred, seq, ev, "h")
                )
                inserted += 1
        return AppendResult(inserted, duplicates)

    def _sorted(self, flt: ActivityFilter, order: Order) -> list[StoredEvent]:
        with self.lock:
            found = [e for e in self.events if _matches(flt, e)]
        return sorted(found, key=_key, reverse=order == "desc")

    def query(self, flt: ActivityFilter, page: PageRequest) -> Page:
        self._check()
        found = self._sorted(flt, page.order)
        if page.cursor is not None:
            at = (page.cursor.occurred_at_us, page.cursor.event_id)
            found = [e for e in found if (_key(e) < at if page.order == "desc" else _key(e) > at)]
        events = found[: page.limit]
        more = len(found) > page.limit
        last = events[-1] if events else None
        cursor = Cursor(*_key(last)) if more and last is not None else None
        return Page(events, cursor)

    def count(self, flt: ActivityFilter) -> int:
        self._check()
        return len(self._sorted(flt, "asc"))

    def facets(self, flt: ActivityFilter) -> Facets:
        self._check()
        out = Facets()
        with self.lock:
            for e in self.events:
                if _matches(flt, e, menus=True):
                    c, a = e.event["category"], e.event["activity"]
                    out.categories[c] = out.categories.get(c, 0) + 1
                    out.activities[a] = out.activities.get(a, 0) + 1
        return out

    def after(self, account_id: str, checkpoint: Checkpoint, limit: int) -> CheckpointPage:
        self._check()
        with self.lock:
            found = [
                e for e in self.events if e.account_id == account_id and e.seq > checkpoint.seq
            ]
        found.sort(key=lambda e: e.seq)
        events = found[:limit]
        return CheckpointPage(events, Checkpoint(events[-1].seq) if events else checkpoint)

    def get(self, account_id: str, event_id: str) -> StoredEvent | None:
        self._check()
        with self.lock:
            return next(
                (e for e in self.events if e.account_id == account_id and e.event_id == event_id),
                None,
            )

    def export(self, flt: ActivityFilter, order: Order = "desc") -> Iterator[StoredEvent]:
        self._check()
        found = self._sorted(flt, order)
        self.exports_opened += 1

        return _Rows(self, found)

    def set_retention(self, account_id: str, days: int | None) -> None:
        raise NotImplementedError

    def retention_days(self, account_id: str) -> int:
        return 365

    def apply_retention(self, now: datetime, batch_size: int = 10_000) -> RetentionResult:
        raise NotImplementedError

    def verify(self, account_id: str) -> VerifyResult:
        raise NotImplementedError

    def accounts(self) -> list[str]:
        with self.lock:
            return sorted({e.account_id for e in self.events})

    def close(self) -> None:
        pass


class _Rows:
    """An export iterator that counts its rows and its close (started or not)."""

    def __init__(self, store: FakeStore, found: list[StoredEvent]) -> None:
        self._store = store
        self._left = iter(found)
        self._closed = False

    def __iter__(self) -> _Rows:
        return self

    def __next__(self) -> StoredEvent:
        if self._closed:
            raise StopIteration
        self._store._check()
        event = next(self._left)
        return event

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store.exports_closed += 1
