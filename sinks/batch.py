"""A batch: a run of consecutive records of one destination topic partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditstream.pipeline.log import Record

DECODED_SIZE_FACTOR = 8
"""Memory a record costs once decoded, as a multiple of its encoded size: the decoded event
(dicts, strings, datetimes) measured at about 6.2 times the Avro bytes with ``tracemalloc``
over the simulator's mix, plus the record itself; 8 leaves room for the allocator."""


def decoded_size(record: Record) -> int:
    """The memory estimate of ``record`` once decoded (see :data:`DECODED_SIZE_FACTOR`)."""
    return DECODED_SIZE_FACTOR * len(record.value)


@dataclass(slots=True)
class Batch:
    """Records of one partition, in offset order. ``events`` are the decoded records, in the
    same order; records that failed to decode are not in ``events`` (they are dead-lettered).

    The worker holds a batch as records only and decodes it for each attempt, so every attempt
    at one batch renders the same events. ``replay_id`` is set on batches of a requested replay
    (their deliveries are new ones, see :func:`sinks.signature.idempotency_key`)."""

    destination_id: str
    account_id: str
    topic: str
    partition: int
    records: list[Record] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0
    opened_at: float = 0.0
    replay_id: str | None = None
    documents: list[bytes] | None = None
    """``events`` already rendered as JSON documents of the event shape ``documents_schema``,
    one per event in the same order (``sinks.attempts.materialize`` renders each event once);
    None when the events have not been rendered (a sink renders them as it needs)."""
    documents_schema: str | None = None

    def documents_for(self, schema: str) -> list[bytes] | None:
        """The rendered documents when they are of shape ``schema`` and match ``events``."""
        if self.documents is None or self.documents_schema != schema:
            return None
        return self.documents if len(self.documents) == len(self.events) else None

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
