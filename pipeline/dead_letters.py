"""Dead-letter records: the original bytes, key and headers, plus why and where from."""

from __future__ import annotations

from auditstream.pipeline import topics
from auditstream.pipeline.log import OutgoingRecord, Record

REASON = "dlq.reason"
DETAIL = "dlq.detail"
STAGE = "dlq.stage"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"


def dead_letter(record: Record, *, stage: str, reason: str, detail: str) -> OutgoingRecord:
    """The dead-letter record for ``record``. ``reason`` is a short stable code
    (``missing_header``, ``unknown_activity``, ``malformed``, ``unknown_schema``, ...);
    ``detail`` a human sentence."""
    headers = (
        *((k, v) for k, v in record.headers if not k.startswith("dlq.")),
        (REASON, reason.encode()),
        (DETAIL, detail.encode()[:1000]),
        (STAGE, stage.encode()),
        (SOURCE_TOPIC, record.topic.encode()),
        (SOURCE_PARTITION, str(record.partition).encode()),
        (SOURCE_OFFSET, str(record.offset).encode()),
    )
    return OutgoingRecord(
        topic=topics.DEAD_LETTERS, value=record.value, key=record.key, headers=headers
    )
