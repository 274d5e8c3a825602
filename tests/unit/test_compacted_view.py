"""Following a compacted topic: when a partition counts as read to its end (Kafka leaves
transaction markers no poll returns), polling, and closing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pytest

from auditstream.pipeline.compacted_view import CompactedTopicView
from auditstream.pipeline.embedded_log import EmbeddedLog
from auditstream.pipeline.errors import LogError
from auditstream.pipeline.log import OutgoingRecord, Record, TopicPartition

TOPIC = "auditstream.test"
TP = TopicPartition(TOPIC, 0)


@dataclass
class ScriptedReader:
    """A reader whose polls return ``batches`` in turn (then nothing) and whose position is
    ``positions[i]`` after the i-th poll (the last one after that)."""

    batches: list[list[Record]]
    positions: list[int]
    polls: int = 0
    closed: bool = False
    group: str = ""

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        self.polls += 1
        return self.batches[self.polls - 1] if self.polls <= len(self.batches) else []

    def position(self, tp: TopicPartition) -> int:
        return self.positions[min(self.polls, len(self.positions)) - 1] if self.polls else -1001

    def close(self) -> None:
        self.closed = True

    # unused parts of the Consumer protocol
    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...
    def committed(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, partitions: Iterable[TopicPartition]) -> None: ...
    def resume(self, partitions: Iterable[TopicPartition]) -> None: ...
    def seek(self, tp: TopicPartition, offset: int) -> None: ...
    def on_revoke(self, callback: Callable[[set[TopicPartition]], None]) -> None: ...


@dataclass
class ScriptedLog:
    """A log with one partition whose end offset is ``end``; ``left`` says whether a record is
    left at or after an offset (``timestamp_at``)."""

    reader_: ScriptedReader
    end: int
    left: Callable[[int], bool] = lambda _offset: False
    name: str = "scripted"
    created: list[str] = field(default_factory=list)

    def create_topic(self, topic: str, partitions: int = 1, compacted: bool = False) -> None:
        self.created.append(topic)

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        return {TP: self.end}

    def timestamp_at(self, tp: TopicPartition, offset: int) -> int | None:
        return 1 if self.left(offset) else None

    def reader(self, topic: str) -> ScriptedReader:
        return self.reader_


def _records(*offsets: int) -> list[Record]:
    return [Record(TOPIC, 0, o, b"k", str(o).encode()) for o in offsets]


@pytest.mark.parametrize(
    ("batches", "positions", "end", "left", "polls"),
    [
        # an empty topic is read without polling
        ([], [-1001], 0, lambda _o: False, 0),
        # records to the end: the position says so after the poll that returned them
        ([_records(0, 1, 2)], [3], 3, lambda _o: False, 1),
        # a commit marker at offset 2: the position moves past it, no poll returns it
        ([_records(0, 1)], [3], 3, lambda _o: False, 1),
        # no position yet (nothing fetched): an empty poll and no record left decide
        ([_records(0, 1), []], [-1001], 3, lambda o: o < 2, 2),
        # no position yet and a record is still there: read on until the position moves
        ([[], [], _records(0, 1, 2)], [-1001, -1001, 3], 3, lambda o: o < 3, 3),
    ],
)
def test_catch_up_stops_at_the_end_past_markers(
    batches: list[list[Record]],
    positions: list[int],
    end: int,
    left: Callable[[int], bool],
    polls: int,
) -> None:
    reader = ScriptedReader(batches, positions)
    applied: list[int] = []
    view = CompactedTopicView(
        ScriptedLog(reader, end, left),  # type: ignore[arg-type]
        TOPIC,
        lambda r: applied.append(r.offset),
    )
    view.catch_up(timeout=5.0)
    assert reader.polls == polls
    assert applied == [r.offset for batch in batches[:polls] for r in batch]


def test_catch_up_raises_when_the_end_is_not_reached_in_time() -> None:
    reader = ScriptedReader([], [1])
    view = CompactedTopicView(ScriptedLog(reader, 3), TOPIC, lambda _r: None)  # type: ignore[arg-type]
    with pytest.raises(TimeoutError, match=TOPIC):
        view.catch_up(timeout=0.0)


def _produce(log: EmbeddedLog, *values: bytes) -> None:
    producer = log.producer()
    for v in values:
        producer.produce(OutgoingRecord(TOPIC, v, key=b"k"))
    producer.close()


def test_catch_up_then_poll_on_the_embedded_log(embedded_log: EmbeddedLog) -> None:
    embedded_log.create_topic(TOPIC, compacted=True)
    _produce(embedded_log, b"a", b"b")
    seen: list[bytes] = []
    view = CompactedTopicView(embedded_log, TOPIC, lambda r: seen.append(r.value))
    view.catch_up()
    assert seen == [b"a", b"b"]
    _produce(embedded_log, b"c")
    assert view.poll(min_interval=60.0) == 1  # the first poll is never held back
    _produce(embedded_log, b"d")
    assert view.poll(min_interval=60.0) == 0  # polled less than a minute ago
    assert view.poll() == 1
    assert view.poll() == 0
    assert seen == [b"a", b"b", b"c", b"d"]
    view.close()
    view.close()  # idempotent
    with pytest.raises(LogError, match="closed"):
        view.poll()
    with pytest.raises(LogError, match="closed"):
        view.catch_up()


def test_the_topic_is_created_compacted(embedded_log: EmbeddedLog) -> None:
    view = CompactedTopicView(embedded_log, TOPIC, lambda _r: None)
    view.catch_up()
    assert TOPIC in embedded_log.list_topics()
    view.close()


def test_a_repeated_catch_up_does_not_poll() -> None:
    """The router catches up on every batch that carries a settings event: once the reader is
    past the end, catching up again must not wait on an empty poll."""
    reader = ScriptedReader([_records(0, 1, 2)], [3])
    view = CompactedTopicView(ScriptedLog(reader, 3), TOPIC, lambda _r: None)  # type: ignore[arg-type]
    view.catch_up(timeout=5.0)
    assert reader.polls == 1
    for _ in range(3):
        view.catch_up(timeout=5.0)
    assert reader.polls == 1
