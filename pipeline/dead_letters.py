"""Dead-letter records: the original bytes, key and headers, plus why and where from.

A dead letter always fits the record size limit: when the original is too large to keep
whole, the body is cut to a prefix (enough to tell what it was) and its full size is kept
in a header; original headers and key are dropped or cut if they are the problem.
"""

from __future__ import annotations

from auditstream.pipeline import topics
from auditstream.pipeline.log import Headers, OutgoingRecord, Record
from auditstream.pipeline.record_limits import MAX_RECORD_BYTES, headers_size, record_size

REASON = "dlq.reason"
DETAIL = "dlq.detail"
STAGE = "dlq.stage"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"
VALUE_SIZE = "dlq.value.size"
"""Set when the body was cut: the size of the original body in bytes."""
KEY_SIZE = "dlq.key.size"
"""Set when the key was cut: the size of the original key in bytes."""
HEADERS_DROPPED = "dlq.headers.dropped"
"""Set when the original headers were dropped: how many there were."""

VALUE_PREFIX_BYTES = 64 * 1024
"""How much of a body too large to keep whole a dead letter keeps."""
_KEY_BYTES = 1024
_ORIGINAL_HEADERS_BYTES = 16 * 1024


def dead_letter(
    record: Record,
    *,
    stage: str,
    reason: str,
    detail: str,
    max_bytes: int = MAX_RECORD_BYTES,
    keep_value: bool = True,
) -> OutgoingRecord:
    """The dead-letter record for ``record``, at most ``max_bytes`` long. ``reason`` is a
    short stable code (``missing_header``, ``unknown_activity``, ``malformed``,
    ``unknown_schema``, ``too_large``, ...); ``detail`` a human sentence. ``keep_value=False``
    keeps no body at all (for when even a cut dead letter was refused)."""
    own: Headers = (
        (REASON, reason.encode()),
        (DETAIL, detail.encode()[:1000]),
        (STAGE, stage.encode()),
        (SOURCE_TOPIC, record.topic.encode()),
        (SOURCE_PARTITION, str(record.partition).encode()),
        (SOURCE_OFFSET, str(record.offset).encode()),
    )
    original = tuple((k, v) for k, v in record.headers if not k.startswith("dlq."))
    whole = (*original, *own)
    if keep_value and record_size(record.key, record.value, whole) <= max_bytes:
        return OutgoingRecord(
            topic=topics.DEAD_LETTERS, value=record.value, key=record.key, headers=whole
        )
    extra: list[tuple[str, bytes]] = [(VALUE_SIZE, str(len(record.value)).encode())]
    key = record.key
    if key is not None and len(key) > _KEY_BYTES:
        key = key[:_KEY_BYTES]
        extra.append((KEY_SIZE, str(len(record.key or b"")).encode()))
    if not keep_value or headers_size(original) > _ORIGINAL_HEADERS_BYTES:
        extra.append((HEADERS_DROPPED, str(len(original)).encode()))
        original = ()
    headers = (*original, *own, *extra)
    room = max_bytes - record_size(key, b"", headers)
    value = record.value[: max(0, min(room, VALUE_PREFIX_BYTES))] if keep_value else b""
    return OutgoingRecord(topic=topics.DEAD_LETTERS, value=value, key=key, headers=headers)
