"""Whether a stored row's filter columns say what its canonical JSON says (pure).

The hash chain covers the canonical bytes only; reads filter and order by the columns beside
them (``event_id``, ``occurred_at_us``, the actor, ...) and retention deletes by
``occurred_at_us``. A column edited behind the store's back would hide an event from a filter,
move it in time, or let retention delete a recent one, while every hash still verifies: so
verify and retention compare the columns with the JSON the chain vouches for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from auditstream.store.base import VerifyResult
from auditstream.store.hash_chain import ChainFault, ChainRow
from auditstream.store.query import micros

CHECKED = (
    "account_id",
    "event_id",
    "occurred_at_us",
    "category",
    "activity",
    "actor_user_id",
    "actor_email",
    "resource_type",
    "resource_id",
    "outcome",
    "ip",
)
"""The columns compared, in the order ``stored`` gives them."""


def _section(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    return value if type(value) is dict else _EMPTY  # JSON objects are dicts (fast check)


_EMPTY: dict[str, Any] = {}


def expected_columns(canonical: bytes) -> tuple[object, ...] | None:
    """The ``CHECKED`` column values the canonical JSON gives (as ``event_columns`` stores
    them); ``None`` when the bytes are not an event's JSON (the chain reports those)."""
    try:
        event = orjson.loads(canonical)
        occurred_at_us = micros(datetime.fromisoformat(event["occurred_at"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    actor, resource = _section(event, "actor"), _section(event, "resource")
    email = actor.get("email")
    return (
        event.get("account_id"),
        event.get("event_id"),
        occurred_at_us,
        event.get("category"),
        event.get("activity"),
        actor.get("user_id"),
        email.lower() if isinstance(email, str) and email else None,
        resource.get("type"),
        resource.get("id"),
        _section(event, "outcome").get("status"),
        _section(event, "request").get("ip"),
    )


def mismatch(
    canonical: bytes,
    stored: Sequence[object],
    as_stored: Callable[[object], object] | None = None,
) -> str | None:
    """The first ``CHECKED`` column whose ``stored`` value is not what ``canonical`` gives, or
    ``None``. ``as_stored`` turns a JSON value into the form the backend keeps (PostgreSQL
    keeps text without NUL characters)."""
    expected = expected_columns(canonical)
    if expected is None:
        return None
    if as_stored is not None:
        expected = tuple(as_stored(value) for value in expected)
    if expected == tuple(stored):  # nearly every row: one comparison
        return None
    for name, want, got in zip(CHECKED, expected, stored, strict=True):
        if want != got:
            return name
    return None


class ColumnCheck:
    """Passes a chain walk's rows on, remembering the first whose filter columns are not what
    its canonical JSON says (``as_stored`` as in :func:`mismatch`)."""

    def __init__(self, as_stored: Callable[[object], object] | None = None) -> None:
        self.fault: ChainFault | None = None
        self._as_stored = as_stored

    def rows(self, rows: Iterator[tuple[ChainRow, list[Any]]]) -> Iterator[ChainRow]:
        for row, columns in rows:
            if self.fault is None:
                column = mismatch(row.canonical, columns, self._as_stored)
                if column is not None:
                    self.fault = ChainFault(
                        row.seq,
                        "altered",
                        f"the row's {column} column is not what its hashed content says",
                    )
            yield row

    def earlier(self, found: VerifyResult) -> VerifyResult:
        """``found`` (the chain's verdict), or the column fault when it comes at an earlier
        row (or the chain is whole)."""
        column, bad = self.fault, found.first_bad_seq
        if column is None or (bad is not None and bad <= column.seq):
            return found
        return VerifyResult(
            found.account_id, found.rows, False, column.seq, column.problem, column.detail
        )
