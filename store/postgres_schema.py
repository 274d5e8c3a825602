"""The PostgreSQL audit store's schema: its migrations and its month partitions (pure).

Migrations are the files ``store/migrations/postgres/NNNN_name.sql``, applied in number order
and recorded in ``schema_migrations``. ``events`` is range-partitioned by month on
``occurred_at_us``; a month's partition is named ``events_yYYYYmMM`` and holds
``[first microsecond of the month, first microsecond of the next)``. Months exist only between
``FIRST_MONTH`` and ``END_MONTH``: an event time outside them (a producer's clock at the epoch,
year 9999) goes to the default partition, so no input can make thousands of partitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from auditstream.store.query import micros

FIRST_MONTH = (2000, 1)
END_MONTH = (2100, 1)
"""Months from ``FIRST_MONTH`` (inclusive) to ``END_MONTH`` (exclusive) get a partition."""

_NAME = re.compile(r"^events_y(\d{4})m(\d{2})$")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    @property
    def name(self) -> str:
        return f"events_y{self.year:04d}m{self.month:02d}"

    @property
    def lower_us(self) -> int:
        return micros(datetime(self.year, self.month, 1, tzinfo=UTC))

    @property
    def upper_us(self) -> int:
        return self.next().lower_us

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)


_FIRST = Month(*FIRST_MONTH)
_END = Month(*END_MONTH)
_FIRST_US = _FIRST.lower_us
_END_US = _END.lower_us


def month_of(occurred_at_us: int) -> Month | None:
    """The month partition that holds ``occurred_at_us``; ``None``: the default partition."""
    if not _FIRST_US <= occurred_at_us < _END_US:
        return None
    moment = datetime.fromtimestamp(occurred_at_us // 1_000_000, tz=UTC)
    return Month(moment.year, moment.month)


def month_named(name: str) -> Month | None:
    """The month of a partition table's name; ``None`` for any other table."""
    found = _NAME.match(name)
    if found is None:
        return None
    month = Month(int(found.group(1)), int(found.group(2)))
    return month if 1 <= month.month <= 12 and _FIRST <= month < _END else None


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this release, in version order."""
    folder = resources.files("auditstream.store").joinpath("migrations", "postgres")
    found: list[Migration] = []
    for entry in folder.iterdir():
        matched = _MIGRATION.match(entry.name)
        if matched is not None:
            found.append(Migration(int(matched.group(1)), matched.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two PostgreSQL migrations share a number: {versions}")
    return found


def latest_version() -> int:
    return max((m.version for m in migrations()), default=0)
