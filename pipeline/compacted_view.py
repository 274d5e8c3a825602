"""Following a compacted topic (settings, status, tokens): read it to its end, then poll it.

"Read until the end offsets" is not enough on Kafka: a transactional write (the settings API
stores settings and their audit event in one transaction) leaves a commit marker at the end of
the partition, which takes an offset but is never returned by a poll. A partition therefore
counts as read when the reader's position, which moves past markers, reaches the end offset;
while a reader has no position yet (negative: nothing fetched), an empty poll with no record
left at or after the next offset (``Log.timestamp_at`` returns None) counts too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import Consumer, Log, Record, TopicPartition

ApplyRecord = Callable[[Record], None]
"""Called with every record read, in offset order per partition."""

_POLL_RECORDS = 1000
_CATCH_UP_POLL_S = 0.05
"""One poll of a catch-up. Kafka's consume waits for all ``_POLL_RECORDS`` or this long, so a
topic of fewer records cost the whole wait on every poll (a sink worker's start waited out
0.5 s for each view it catches up with); the loop ends as soon as the end offsets are read."""


class CompactedTopicView:
    """One compacted topic, every record handed to ``apply`` as it is read.

    Not thread-safe: its owner serialises calls (and guards the state ``apply`` changes).
    """

    def __init__(self, log_backend: Log, topic: str, apply: ApplyRecord) -> None:
        """Create ``topic`` (compacted) if missing and open a reader at its beginning.
        Raises :class:`LogError` if the log cannot."""
        log_backend.create_topic(topic, compacted=True)
        self.topic = topic
        self._log = log_backend
        self._apply = apply
        self._reader: Consumer = log_backend.reader(topic)
        self._polled_at = -math.inf
        self._closed = False

    def catch_up(self, timeout: float = 30.0) -> None:
        """Apply every record up to the topic's end offsets as they are now (any number of
        times). Raises ``TimeoutError`` if that takes longer than ``timeout`` seconds (what was
        read stays applied, and polling continues from there), :class:`LogError` if the log
        cannot be read."""
        self._refuse_if_closed()
        ends = self._log.end_offsets(self.topic)
        read_to: dict[TopicPartition, int] = dict.fromkeys(ends, 0)  # next offset to apply
        done: set[TopicPartition] = set()
        deadline = time.monotonic() + timeout
        while True:
            # Already read past the end (a repeated catch-up): no poll, so no wait.
            done.update(tp for tp, end in ends.items() if self._reader.position(tp) >= end)
            pending = [tp for tp, end in ends.items() if tp not in done and read_to[tp] < end]
            if not pending:
                return
            records = self._reader.poll(_POLL_RECORDS, _CATCH_UP_POLL_S)
            for record in records:
                self._apply(record)
                read_to[record.tp] = max(read_to.get(record.tp, 0), record.offset + 1)
            for tp in pending:
                position = self._reader.position(tp)
                if position >= ends[tp]:
                    done.add(tp)  # past the last record and any marker after it
                elif (
                    position < 0 and not records and self._log.timestamp_at(tp, read_to[tp]) is None
                ):
                    done.add(tp)  # only markers (or nothing) left
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic} not read to its end within {timeout:.0f} s")

    def poll(self, min_interval: float = 0.0, wait: float = 0.0) -> int:
        """Apply the records written since the last read, unless the previous poll was less
        than ``min_interval`` seconds ago; waits up to ``wait`` seconds for a first one.
        Returns how many were applied. Raises :class:`LogError` if the log cannot be read or
        the view is closed."""
        self._refuse_if_closed()
        now = time.monotonic()
        if now - self._polled_at < min_interval:
            return 0
        self._polled_at = now
        records = self._reader.poll(_POLL_RECORDS, wait)
        for record in records:
            self._apply(record)
        return len(records)

    def close(self) -> None:
        """Close the reader (idempotent)."""
        if not self._closed:
            self._closed = True
            self._reader.close()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise LogError(f"the view of {self.topic} is closed")
