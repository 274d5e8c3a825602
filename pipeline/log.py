"""The log interface both backends implement: Kafka (production) and embedded (SQLite).

Deliberately small: what the producers, the router and the sink workers need and no more.
Offsets follow Kafka's convention: a committed offset is the *next* offset to read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Protocol

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to produce."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = field(default=())


DeliveryCallback = Callable[[Exception | None, OutgoingRecord], None]
"""Called once per produced record: ``None`` when stored, else the reason it was not."""


class CommitOffset(int):
    """A committed offset (an ``int``) with the metadata string committed beside it, for
    :meth:`TransactionalProducer.produce_and_commit`; a plain ``int`` commits no metadata.
    Kafka brokers refuse metadata over ``offset.metadata.max.bytes`` (4,096 by default)."""

    metadata: str

    def __new__(cls, offset: int, metadata: str = "") -> CommitOffset:
        made = super().__new__(cls, offset)
        made.metadata = metadata
        return made


def metadata_of(offset: int) -> str:
    """The metadata to commit with ``offset`` ("" for a plain ``int``)."""
    return offset.metadata if isinstance(offset, CommitOffset) else ""


class Producer(Protocol):
    def produce(self, record: OutgoingRecord, on_delivery: DeliveryCallback | None = None) -> None:
        """Queue ``record``. Raises :class:`pipeline.errors.LogError` if it cannot be queued."""

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for queued records; returns how many are still undelivered."""

    def close(self) -> None: ...


class TransactionalProducer(Protocol):
    def produce_and_commit(
        self,
        records: Sequence[OutgoingRecord],
        consumer: Consumer,
        offsets: Mapping[TopicPartition, int],
    ) -> None:
        """Atomically store ``records`` and commit ``offsets`` for ``consumer``'s group (with
        the metadata of each :class:`CommitOffset`).

        Raises :class:`pipeline.errors.TransactionAborted` when nothing was stored (the caller
        rewinds to its committed offsets) or :class:`pipeline.errors.FencedError`.
        """

    def produce_atomically(self, records: Sequence[OutgoingRecord]) -> None:
        """Store all of ``records`` or none (e.g. a settings change and its audit event).

        Raises :class:`pipeline.errors.TransactionAborted` when nothing was stored.
        """

    def close(self) -> None: ...


class Consumer(Protocol):
    group: str

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """Up to ``max_records`` records from unpaused assigned partitions, in offset order per
        partition; waits at most ``timeout`` seconds for the first one."""

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Synchronously commit ``offsets`` (next offset to read) for this group."""

    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets (partitions never committed are absent)."""

    def committed_metadata(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, str]:
        """The metadata committed with the group's offsets ("" where none was; partitions
        never committed are absent). Raises :class:`pipeline.errors.LogError`."""

    def assignment(self) -> set[TopicPartition]: ...

    def pause(self, partitions: Iterable[TopicPartition]) -> None: ...

    def resume(self, partitions: Iterable[TopicPartition]) -> None: ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Make the next poll of ``tp`` start at ``offset``."""

    def position(self, tp: TopicPartition) -> int:
        """The offset the next poll of ``tp`` reads from. On Kafka it moves past transaction
        markers, which no poll returns; negative before the first fetch."""

    def on_revoke(self, callback: Callable[[set[TopicPartition]], None]) -> None:
        """Register a callback run when partitions are taken away (rebalance)."""

    def close(self) -> None: ...


class Log(Protocol):
    """A log backend: topics, producers, consumers."""

    name: str

    def create_topic(self, topic: str, partitions: int = 1, compacted: bool = False) -> None:
        """Create ``topic`` if it does not exist (idempotent)."""

    def delete_topic(self, topic: str) -> None: ...

    def list_topics(self) -> set[str]: ...

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        """The offset the next record of each partition will get."""

    def producer(self) -> Producer: ...

    def transactional_producer(self, transactional_id: str) -> TransactionalProducer: ...

    def consumer(self, group: str, topics: Sequence[str] | Pattern[str]) -> Consumer:
        """A consumer in ``group`` subscribed to ``topics`` (a list or a regex), starting at
        the committed offsets, or at the earliest offset where none is committed."""

    def committed_offsets(self, group: str, topic: str) -> dict[TopicPartition, int]:
        """``group``'s committed offsets on ``topic``, read without joining the group."""

    def timestamp_at(self, tp: TopicPartition, offset: int) -> int | None:
        """The timestamp (ms) of the record at ``offset`` (or the next one), None if none."""

    def offset_for_time(self, tp: TopicPartition, timestamp_ms: int) -> int:
        """The first offset whose record timestamp is at or after ``timestamp_ms`` (the end
        offset if there is none)."""

    def reader(self, topic: str) -> Consumer:
        """A group-less consumer reading every partition of ``topic`` from the beginning;
        used to rebuild state from compacted topics. Its ``commit`` does nothing."""

    def close(self) -> None: ...
