"""What a reader asks of the audit store (pure values, no I/O).

``ActivityFilter`` is the filtered view of one account's audit log (the viewer's menus, the
query API's parameters, an export); ``PageRequest`` asks for one page of it by keyset cursor on
``(occurred_at, event_id)`` -- never on time alone, which skips or repeats events that share a
timestamp. A ``Checkpoint`` is the position of a SIEM that pulls in the order the store received
the events (``StoredEvent.seq``), so events arriving late for their timestamp are never missed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from auditstream.store.errors import BadCursor

Order = Literal["desc", "asc"]
MAX_PAGE = 1000
"""The most events one page (or one checkpoint read) returns."""


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """One account's events matching every given condition; an empty tuple or ``None`` means
    "any". ``actors`` match the actor's user id or e-mail (case-insensitive for e-mail);
    ``since`` is inclusive and ``until`` exclusive, both on ``occurred_at``; ``text`` is free
    text over actor name and e-mail, resource name and id, activity, and detail values."""

    account_id: str
    actors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: Literal["success", "failure"] | None = None
    ip: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """The position after the last event of a page: its ``occurred_at`` in microseconds since
    the epoch and its ``event_id``. Opaque to clients (``encode``/``decode``)."""

    occurred_at_us: int
    event_id: str

    def encode(self) -> str:
        raw = f"{self.occurred_at_us}:{self.event_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises ``BadCursor`` for anything ``encode`` did not make."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            micros, _, event_id = raw.partition(":")
            cursor = cls(int(micros), event_id)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise BadCursor("the cursor is not one this API returned") from exc
        if not event_id or len(event_id) > 100 or cursor.encode() != text:
            raise BadCursor("the cursor is not one this API returned")
        return cursor


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Events after ``cursor`` (``None``: from the start) in ``order`` of
    ``(occurred_at, event_id)``; at most ``limit`` (1..``MAX_PAGE``)."""

    order: Order = "desc"
    limit: int = 100
    cursor: Cursor | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A puller's position: the ``seq`` of the last event it received (0: none yet)."""

    seq: int = 0

    def encode(self) -> str:
        return f"s{self.seq}"

    @classmethod
    def decode(cls, text: str) -> Checkpoint:
        """Raises ``BadCursor`` for anything ``encode`` did not make."""
        if not text.startswith("s") or not text[1:].isdigit() or len(text) > 20:
            raise BadCursor("the checkpoint is not one this API returned")
        return cls(int(text[1:]))


def micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class Facets:
    """Event counts of a filtered range per category and per activity (the viewer's menus)."""

    categories: dict[str, int] = field(default_factory=dict)
    activities: dict[str, int] = field(default_factory=dict)
