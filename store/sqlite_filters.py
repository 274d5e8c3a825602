"""``ActivityFilter`` and keyset cursors as SQLite ``WHERE`` clauses (pure: text and parameters).

Every value a reader sends is a bound parameter; the only text put into the SQL is fixed
column names and placeholders, one per value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from auditstream.store.query import ActivityFilter, Cursor, Order, micros
from auditstream.store.text_search import fts5_query, search_terms


@dataclass
class Where:
    conditions: list[str] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def add(self, condition: str, *params: object) -> None:
        self.conditions.append(condition)
        self.params.extend(params)

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


MAX_FILTER_VALUES = 1000
"""Values one filter may list (SQLite binds at most 32,766 parameters to a statement)."""

ActorMatch = Literal["either", "user_id", "email"]


def text_match(flt: ActivityFilter) -> str | None:
    """The FTS5 query of ``flt``'s free text; ``None`` when it has none."""
    terms = search_terms(flt.text)
    return fts5_query(terms) if terms else None


def filter_where(
    flt: ActivityFilter,
    *,
    with_kinds: bool = True,
    actor_match: ActorMatch = "either",
    with_text: bool = True,
) -> Where:
    """The conditions of ``flt``; ``with_kinds=False`` leaves out its categories and
    activities (the facets count what else could be picked). ``actor_match`` keeps one side of
    the actor condition: a page reads each side along its own index and merges the two (with
    the ``OR`` SQLite would walk the account's whole time index for a rare actor).
    ``with_text=False`` leaves out the free text (a page that joins the text index itself)."""
    values = len(flt.actors) + len(flt.categories) + len(flt.activities)
    if values > MAX_FILTER_VALUES:
        raise ValueError(
            f"a filter takes at most {MAX_FILTER_VALUES} actors, categories and activities "
            f"together, not {values}: narrow it, or ask in several parts"
        )
    where = Where()
    where.add("account_id = ?", flt.account_id)
    if flt.actors:
        ids = list(flt.actors)
        emails = [actor.lower() for actor in flt.actors]
        by_id = f"actor_user_id IN ({_marks(len(ids))})"
        by_email = f"actor_email IN ({_marks(len(emails))})"
        if actor_match == "user_id":
            where.add(by_id, *ids)
        elif actor_match == "email":
            where.add(by_email, *emails)
        else:
            where.add(f"({by_id} OR {by_email})", *ids, *emails)
    if with_kinds and flt.categories:
        where.add(f"category IN ({_marks(len(flt.categories))})", *flt.categories)
    if with_kinds and flt.activities:
        where.add(f"activity IN ({_marks(len(flt.activities))})", *flt.activities)
    for column, value in (
        ("resource_type", flt.resource_type),
        ("resource_id", flt.resource_id),
        ("outcome", flt.outcome),
        ("ip", flt.ip),
    ):
        if value is not None:
            where.add(f"{column} = ?", value)
    if flt.since is not None:
        where.add("occurred_at_us >= ?", micros(flt.since))
    if flt.until is not None:
        where.add("occurred_at_us < ?", micros(flt.until))
    match = text_match(flt) if with_text else None
    if match is not None:
        where.add("id IN (SELECT rowid FROM events_text WHERE events_text MATCH ?)", match)
    return where


def after_cursor(where: Where, order: Order, cursor: Cursor | None) -> None:
    """Add the keyset condition: rows strictly after ``cursor`` in ``order``."""
    if cursor is None:
        return
    op = "<" if order == "desc" else ">"
    where.add(
        f"(occurred_at_us, event_id) {op} (?, ?)",
        clamp_int64(cursor.occurred_at_us),
        cursor.event_id,
    )


INT64_MAX = 2**63 - 1


def clamp_int64(value: int) -> int:
    """``value`` within SQLite's integers: a client's cursor or checkpoint may name any number,
    and one past the ends means the same as the end (nothing before or after it)."""
    return max(-INT64_MAX - 1, min(INT64_MAX, value))


def order_by(order: Order) -> str:
    direction = "DESC" if order == "desc" else "ASC"
    return f"ORDER BY occurred_at_us {direction}, event_id {direction}"
