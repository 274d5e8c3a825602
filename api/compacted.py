"""Reading a compacted topic (settings, tokens, status) to its end, on either backend.

"Read until the end offsets" is not enough on Kafka: a transactional write (the settings API
writes settings and their audit event in one transaction) leaves a commit marker at the end of
the partition, which takes an offset but is never returned to a consumer. A partition therefore
also counts as read when a poll comes back empty and no record is left at or after the
position (``Log.timestamp_at`` returns None).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from auditstream.pipeline.log import Consumer, Log, Record, TopicPartition

log = logging.getLogger(__name__)


def consumer_position(consumer: Consumer, tp: TopicPartition) -> int | None:
    """The consumer's position on ``tp`` (past transaction markers) if the backend's consumer
    offers ``position(tp)``; None otherwise. (Not yet part of ``pipeline.log.Consumer``.)"""
    position = getattr(consumer, "position", None)
    if position is None:
        return None
    try:
        value = position(tp)
    except Exception:  # an optional capability: fall back to the slower checks
        return None
    if not isinstance(value, int) or value < 0:  # negative: not fetched yet
        return None
    return value


def read_to_end(
    log_backend: Log,
    reader: Consumer,
    topic: str,
    apply: Callable[[Record], None],
    timeout: float = 30.0,
) -> bool:
    """Apply every record of ``topic`` up to its end offsets as they are now.

    Returns True when read to the end, False (with a warning) if ``timeout`` ran out first; the
    caller keeps polling ``reader`` in either case, so it converges.
    """
    ends = log_backend.end_offsets(topic)
    positions: dict[TopicPartition, int] = dict.fromkeys(ends, 0)
    done: set[TopicPartition] = set()
    deadline = time.monotonic() + timeout
    while True:
        pending = [tp for tp, end in ends.items() if tp not in done and positions[tp] < end]
        if not pending:
            return True
        records = reader.poll(1000, 0.5)
        for record in records:
            apply(record)
            positions[record.tp] = max(positions.get(record.tp, 0), record.offset + 1)
        if not records:
            for tp in pending:
                position = consumer_position(reader, tp)
                if position is not None:
                    if position >= ends[tp]:
                        done.add(tp)  # the consumer passed the markers
                elif log_backend.timestamp_at(tp, positions[tp]) is None:
                    done.add(tp)  # only markers (or nothing) left
        if time.monotonic() > deadline:
            log.warning("%s not read to its end within %.0f s; continuing", topic, timeout)
            return False
