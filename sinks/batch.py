"""A batch: a run of consecutive records of one destination topic partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditstream.pipeline.log import Record


@dataclass(slots=True)
class Batch:
    """Records of one partition, in offset order. ``events`` are the decoded records, in the
    same order; records that failed to decode are not in ``events`` (they are dead-lettered)."""

    destination_id: str
    account_id: str
    topic: str
    partition: int
    records: list[Record] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0
    opened_at: float = 0.0

    @property
    def first_offset(self) -> int:
        return self.records[0].offset

    @property
    def last_offset(self) -> int:
        return self.records[-1].offset

    def first_recorded_at(self) -> datetime | None:
        if not self.events:
            return None
        value = self.events[0]["recorded_at"]
        return value if isinstance(value, datetime) else None
