"""``ActivityFilter`` and keyset cursors as PostgreSQL ``WHERE`` clauses (pure: composed SQL and
parameters).

Every value a reader sends is a bound parameter (lists as one array parameter); the SQL text is
fixed column names and placeholders. Every condition starts with ``account_id``, which keeps
each query on one account's rows (and on one shard, were the tables distributed by account).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import LiteralString

from psycopg import sql

from auditstream.store.postgres_text import NOTHING, query_text
from auditstream.store.query import ActivityFilter, Cursor, Order, micros

VISIBLE: LiteralString = (
    "seq >= COALESCE((SELECT start_seq FROM account_chains WHERE account_id = %s), 1)"
)
"""Rows from the account's chain start on: retention moves the start past expired rows before
their month is dropped (the condition's parameter is the account id)."""


def no_nul(value: str) -> str:
    """``value`` as PostgreSQL text can hold it (no NUL character): stored columns and filter
    values are cleaned alike, so a value with a NUL still finds its event."""
    return value.replace("\x00", "\ufffd")


@dataclass
class Where:
    conditions: list[sql.Composable] = field(default_factory=list)
    params: list[object] = field(default_factory=list)

    def add(self, condition: LiteralString, *params: object) -> None:
        self.conditions.append(sql.SQL(condition))
        self.params.extend(params)

    @property
    def sql(self) -> sql.Composable:
        return sql.SQL(" AND ").join(self.conditions)


def filter_where(flt: ActivityFilter, *, with_kinds: bool = True) -> Where:
    """The conditions of ``flt``; ``with_kinds=False`` leaves out its categories and
    activities (the facets count what else could be picked)."""
    where = Where()
    where.add("account_id = %s", no_nul(flt.account_id))
    where.add(VISIBLE, no_nul(flt.account_id))
    if flt.actors:
        actors = [no_nul(a) for a in flt.actors]
        where.add(
            "(actor_user_id = ANY(%s) OR actor_email = ANY(%s))",
            actors,
            [a.lower() for a in actors],
        )
    if with_kinds and flt.categories:
        where.add("category = ANY(%s)", [no_nul(c) for c in flt.categories])
    if with_kinds and flt.activities:
        where.add("activity = ANY(%s)", [no_nul(a) for a in flt.activities])
    if flt.resource_type is not None:
        where.add("resource_type = %s", no_nul(flt.resource_type))
    if flt.resource_id is not None:
        where.add("resource_id = %s", no_nul(flt.resource_id))
    if flt.outcome is not None:
        where.add("outcome = %s", no_nul(flt.outcome))
    if flt.ip is not None:
        where.add("ip = %s", no_nul(flt.ip))
    if flt.since is not None:
        where.add("occurred_at_us >= %s", micros(flt.since))
    if flt.until is not None:
        where.add("occurred_at_us < %s", micros(flt.until))
    text = query_text(flt.text)
    if text == NOTHING:
        where.add("FALSE")
    elif text is not None:
        where.add("search @@ %s::tsquery", text)
    return where


def after_cursor(where: Where, order: Order, cursor: Cursor | None) -> None:
    """Add the keyset condition: rows strictly after ``cursor`` in ``order``."""
    if cursor is None:
        return
    condition = (
        "(occurred_at_us, event_id) < (%s, %s)"
        if order == "desc"
        else "(occurred_at_us, event_id) > (%s, %s)"
    )
    where.add(condition, cursor.occurred_at_us, no_nul(cursor.event_id))


def order_by(order: Order) -> sql.Composable:
    if order == "desc":
        return sql.SQL("ORDER BY occurred_at_us DESC, event_id DESC")
    return sql.SQL("ORDER BY occurred_at_us ASC, event_id ASC")
